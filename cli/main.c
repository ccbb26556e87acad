/* hone — command-line entry point: dispatches to one cmd_*.c per command. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hone COMMAND [options]\n");
        return 2;
    }
    (void)argv;
    return 0;
}
