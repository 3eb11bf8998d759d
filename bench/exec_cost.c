/* exec_cost.c - what one run of a command costs the machine: CPU (user+sys)
 * and minor page faults of the process, from its wait4() rusage.
 *
 * usage: exec_cost RUNS CMD [ARGS...] [-- CMD [ARGS...]]...
 *
 * The commands are run in turn, RUNS rounds (so a burst of load elsewhere
 * on the machine hits all of them alike), with stdout and stdin on
 * /dev/null; a command that exits non-zero stops the measurement.  Prints one
 * line per command: "median_cpu_us median_minflt min_cpu_us", in the order
 * given.  posix_spawn (vfork-like) starts them, so almost nothing of this
 * program is counted in the child's figures.
 *
 * Built by bench/bench_cli_startup.sh and bench/side_by_side.sh with the
 * system's cc; not part of the meson build.
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

extern char **environ;

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: exec_cost RUNS CMD [ARGS...] [-- CMD [ARGS...]]...\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    if (runs < 1) {
        fprintf(stderr, "exec_cost: RUNS must be a positive number\n");
        return 2;
    }
    /* Split argv at "--" into commands (the separators become NULL). */
    char **cmds[64];
    int ncmds = 0;
    cmds[ncmds++] = &argv[2];
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            argv[i] = NULL;
            if (i + 1 >= argc || ncmds == 64) {
                fprintf(stderr, "exec_cost: an empty command, or more than 64\n");
                return 2;
            }
            cmds[ncmds++] = &argv[i + 1];
        }

    double *cpu = calloc((size_t)(ncmds * runs), sizeof *cpu);
    double *faults = calloc((size_t)(ncmds * runs), sizeof *faults);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    for (int r = 0; r < runs; r++)
        for (int c = 0; c < ncmds; c++) {
            pid_t pid;
            int rc = posix_spawn(&pid, cmds[c][0], &fa, NULL, cmds[c], environ);
            if (rc != 0) {
                fprintf(stderr, "exec_cost: cannot start %s: %s\n", cmds[c][0], strerror(rc));
                return 1;
            }
            int status;
            struct rusage ru;
            if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0) {
                fprintf(stderr, "exec_cost: %s failed (status 0x%x)\n", cmds[c][0], status);
                return 1;
            }
            cpu[c * runs + r] = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
            faults[c * runs + r] = (double)ru.ru_minflt;
        }
    for (int c = 0; c < ncmds; c++) {
        double med_cpu = median(&cpu[c * runs], runs);
        printf("%.0f %.0f %.0f\n", med_cpu, median(&faults[c * runs], runs), cpu[c * runs]);
    }
    posix_spawn_file_actions_destroy(&fa);
    free(cpu);
    free(faults);
    return 0;
}
