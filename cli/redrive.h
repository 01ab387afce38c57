/* `weir redrive`: a failure destination's records back into the asynchronous queue. */
#ifndef WEIR_CLI_REDRIVE_H
#define WEIR_CLI_REDRIVE_H

/* The subcommand, given its own argv (argv[0] is "redrive"). Returns the exit code. */
int weir_redrive_main(int argc, char **argv);

/* A Kafka topic of a stream's failed records back into the topics they came from
 * (cli/redrive_kafka.c); returns the exit code. */
int weir_redrive_kafka(const char *from, double rate, long limit);

#endif
