/* fn_exec: a test function for the exec target. It reads the SQS event from stdin, records each
 * record it saw and prints its result on stdout, behaving as FN_MODE says, so tests can count
 * deliveries and provoke every way a command can fail. A test tool: weir must never need it.
 * Environment: FN_RECORD, FN_MODE, FN_FAIL_MATCH, FN_FAIL_RECEIVES (docs/functions.md). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "tests/functions/fn_event.h"

#define HUGE_BYTES (7 * 1024 * 1024)

static const char ERROR_BODY[] =
    "{\"errorMessage\":\"boom\",\"errorType\":\"Error\",\"stackTrace\":[]}";

static struct fn_fail_rule rule;

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* One write(2) on an O_APPEND fd, so processes sharing the file never interleave lines. */
static void record_write(const char *data, size_t len)
{
    const char *path = getenv("FN_RECORD");
    if (!path || !*path || len == 0)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "fn_exec: %s: %s\n", path, strerror(errno));
        return;
    }
    write_all(fd, data, len);
    close(fd);
}

static void print(const char *text)
{
    write_all(STDOUT_FILENO, text, strlen(text));
}

int main(void)
{
    const char *mode = getenv("FN_MODE");
    mode = mode && *mode ? mode : "ok";
    rule.match = getenv("FN_FAIL_MATCH");
    if (rule.match && !*rule.match)
        rule.match = NULL;
    if (getenv("FN_FAIL_RECEIVES"))
        rule.receives = strtol(getenv("FN_FAIL_RECEIVES"), NULL, 10);

    if (strcmp(mode, "fds") == 0) {
        /* Lists the descriptors it was started with, as {"fds":[0,1,2]}. */
        struct weir_buf out;
        weir_buf_init(&out);
        weir_buf_append_str(&out, "{\"fds\":[");
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
                continue;
            weir_buf_printf(&out, "%s%s", n++ ? "," : "", e->d_name);
        }
        if (d)
            closedir(d);
        weir_buf_append_str(&out, "]}");
        print(out.data);
        weir_buf_deinit(&out);
        return 0;
    }
    if (strcmp(mode, "noread") == 0) {
        /* Exits without reading stdin: the caller's write meets a closed pipe. */
        print("{}");
        return 0;
    }

    struct weir_buf in;
    weir_buf_init(&in);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        weir_buf_append(&in, chunk, (size_t)n);
    }
    json_error_t jerr;
    json_t *event = json_loadb(in.data ? in.data : "", in.len,
                               JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    weir_buf_deinit(&in);
    const char *any = getenv("FN_ANY_EVENT");
    json_t *records = event ? fn_event_records(event, any && !strcmp(any, "1")) : NULL;
    if (!records) {
        json_decref(event);
        record_write("BADREQUEST\n", 11);
        print("{\"errorMessage\":\"not an event with Records\","
              "\"errorType\":\"InvalidRequestContentException\"}");
        return 2;
    }

    struct weir_buf lines;
    weir_buf_init(&lines);
    json_t *failing = json_array();
    /* Without FN_FAIL_MATCH every invocation fails in the failure modes (subject to K). */
    bool request_fails = fn_event_scan(records, &rule, 0, 0, &lines, failing);
    record_write(lines.data, lines.len);
    weir_buf_deinit(&lines);

    int rc = 0;
    if (strcmp(mode, "partial") == 0) {
        if (json_array_size(failing) == 0) {
            print("{}");
        } else {
            json_t *items = json_array();
            json_t *id;
            size_t i;
            json_array_foreach(failing, i, id)
            {
                json_array_append_new(items, json_pack("{s:O}", "itemIdentifier", id));
            }
            json_t *resp = json_pack("{s:o}", "batchItemFailures", items);
            char *text = json_dumps(resp, JSON_COMPACT);
            print(text);
            free(text);
            json_decref(resp);
        }
    } else if (strcmp(mode, "ok") == 0 || !request_fails) {
        print("{}");
    } else if (strcmp(mode, "exit1") == 0) {
        print(ERROR_BODY);
        rc = 1;
    } else if (strcmp(mode, "hang") == 0) {
        for (;;)
            pause();
    } else if (strcmp(mode, "garbage") == 0) {
        print("this is not json <<<");
    } else if (strcmp(mode, "crash") == 0) {
        abort();
    } else if (strcmp(mode, "huge") == 0) {
        static char pad[HUGE_BYTES];
        memset(pad, 'y', sizeof(pad));
        write_all(STDOUT_FILENO, pad, sizeof(pad));
    } else {
        fprintf(stderr, "fn_exec: unknown FN_MODE %s\n", mode);
        rc = 2;
    }
    json_decref(failing);
    json_decref(records);
    json_decref(event);
    return rc;
}
