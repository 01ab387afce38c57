/* `weir redrive`: a failure destination's records back into the asynchronous queue. */
#ifndef WEIR_CLI_REDRIVE_H
#define WEIR_CLI_REDRIVE_H

/* The subcommand, given its own argv (argv[0] is "redrive"). Returns the exit code. */
int weir_redrive_main(int argc, char **argv);

#endif
