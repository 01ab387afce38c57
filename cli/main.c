/* The `weir` command line: subcommands, options and exit codes. It parses arguments and hands
 * over to config/ and cli/run.c; it must never contain pipeline behaviour. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/redrive.h"
#include "cli/run.h"
#include "cli/sources.h"
#include "config/config.h"
#include "core/log.h"
#include "core/mem.h"
#include "pollers/poller.h"

/* Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid configuration. */
#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

static const char usage_text[] =
    "weir - self-hosted event source mappings: polls queues and streams, batches records into\n"
    "the events AWS Lambda delivers, invokes your functions, and settles every record.\n"
    "\n"
    "Usage:\n"
    "  weir run -c FILE [--log-level LEVEL]   run the mappings in FILE until SIGTERM/SIGINT\n"
    "  weir check -c FILE                     validate FILE; print every error; exit 2 if any\n"
    "  weir redrive -c FILE --from URI [--function NAME] [--rate N] [--limit N]\n"
    "                                         send a failure destination's records back into\n"
    "                                         the asynchronous queue (docs/async.md)\n"
    "  weir version                           print the version\n"
    "  weir help | --help                     this text\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration, YAML or JSON (see docs/configuration.md)\n"
    "  -l, --log-level LEVEL trace, debug, info (default), warn, error, off\n"
    "\n"
    "Sources (by the scheme of a mapping's `source` URI):";

static void print_usage(FILE *out)
{
    fputs(usage_text, out);
    for (size_t i = 0; weir_sources[i]; i++)
        fprintf(out, " %s://", weir_sources[i]->config.scheme);
    fputs("\n\nExit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n", out);
}

struct options {
    const char *config;
    enum weir_log_level level;
};

static int parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opt->config = NULL;
    opt->level = WEIR_LOG_INFO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opt->config = optarg;
            break;
        case 'l':
            if (weir_log_parse_level(optarg, &opt->level) != 0) {
                fprintf(stderr,
                        "weir: unknown log level '%s' (trace, debug, info, warn, "
                        "error, off)\n",
                        optarg);
                return -1;
            }
            break;
        case 'h':
            print_usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weir: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!opt->config) {
        fprintf(stderr, "weir: missing -c FILE (the configuration)\n");
        return -1;
    }
    return 0;
}

static struct weir_config *load(const char *path)
{
    struct weir_cfg_report rep;
    weir_cfg_report_init(&rep);
    struct weir_config *cfg = weir_config_load_file(path, weir_cli_cfg_env(), &rep);
    for (size_t i = 0; i < rep.n; i++)
        fprintf(stderr, "%s\n", rep.errors[i]);
    if (!cfg)
        fprintf(stderr, "weir: %s: %zu error%s; nothing was started\n", path, rep.n,
                rep.n == 1 ? "" : "s");
    weir_cfg_report_deinit(&rep);
    return cfg;
}

static int cmd_check(int argc, char **argv)
{
    struct options opt;
    if (parse_options(argc, argv, &opt) != 0)
        return EXIT_USAGE;
    struct weir_config *cfg = load(opt.config);
    if (!cfg)
        return EXIT_USAGE;
    printf("%s: ok (%zu function%s, %zu mapping%s)\n", opt.config, cfg->n_functions,
           cfg->n_functions == 1 ? "" : "s", cfg->n_mappings, cfg->n_mappings == 1 ? "" : "s");
    weir_config_free(cfg);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    struct options opt;
    if (parse_options(argc, argv, &opt) != 0)
        return EXIT_USAGE;
    weir_log_set_level(opt.level);
    struct weir_config *cfg = load(opt.config);
    if (!cfg)
        return EXIT_USAGE;
    int code = weir_run(cfg);
    weir_config_free(cfg);
    return code ? EXIT_RUNTIME : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "redrive") == 0)
        return weir_redrive_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        char allocator[64];
        weir_allocator_name(allocator, sizeof allocator);
        printf("weir %s (allocator: %s)\n", WEIR_VERSION, allocator);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    fprintf(stderr, "weir: unknown command '%s'\n\n", cmd);
    print_usage(stderr);
    return EXIT_USAGE;
}
