/*
 * wsf-enter: the whole runner image of wasm-shim-fleet's `transport: kubernetes` (see docs/operating.md, "Managed clusters").
 *
 *     wsf-enter -- PROGRAM [ARG...]
 *
 * Runs as the only process of a privileged runner pod with hostPID. It finds the node's container runtime
 * that started this container (its nearest ancestor named containerd-shim* or conmon: the shim lives in the
 * namespaces of containerd, which are the node's), joins that process's mount, UTS, IPC, network and PID
 * namespaces, forks (the PID namespace applies to children), runs PROGRAM from the node's own filesystem (the
 * host's /bin/sh) and exits with its status, passing on the signals a container's init gets (SIGTERM when the
 * pod is deleted). It refuses to run anywhere else (no such ancestor: no hostPID, or not started by a container
 * runtime it knows), and takes no other arguments.
 *
 * Why the runtime rather than PID 1: the runtime's mount namespace is where containerd reads its config and
 * finds shim binaries, which is exactly where the node commands must act; on ordinary nodes it is PID 1's.
 *
 * Build: gcc -static -Os -s -o wsf-enter wsf-enter.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child = 0;

static void forward(int sig) {
    if (child > 0) kill(child, sig);
}

static int die(const char *what) {
    fprintf(stderr, "wsf-enter (wasm-shim-fleet runner): %s: %s\n", what, strerror(errno));
    return 126;
}

/* The parent of `pid` from /proc/<pid>/stat (the field after the closing parenthesis of comm), or -1. */
static long parent_of(long pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *close = strrchr(buf, ')');
    if (!close) return -1;
    char state;
    long ppid;
    if (sscanf(close + 1, " %c %ld", &state, &ppid) != 2) return -1;
    return ppid;
}

static int is_runtime(long pid) {
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    return strncmp(comm, "containerd-shim", 15) == 0 || strcmp(comm, "conmon") == 0;
}

int main(int argc, char **argv) {
    static const char *const names[] = {"ipc", "uts", "net", "pid", "mnt"};
    static const int types[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS};
    int fds[5];
    if (argc < 3 || strcmp(argv[1], "--") != 0) {
        fprintf(stderr, "usage: wsf-enter -- PROGRAM [ARG...]\n");
        return 2;
    }
    long runtime = getppid();
    int hops = 0;
    while (runtime > 1 && !is_runtime(runtime) && hops++ < 8) runtime = parent_of(runtime);
    if (runtime <= 1 || !is_runtime(runtime)) {
        fprintf(stderr, "wsf-enter (wasm-shim-fleet runner): no containerd shim or conmon among this "
                        "process's ancestors: run it as a pod with hostPID on a node\n");
        return 125;
    }
    /* Open every namespace first: after the mount namespace changes, /proc may be another /proc. */
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/ns/%s", runtime, names[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) return die(path);
    }
    for (int i = 0; i < 5; i++) {
        if (setns(fds[i], types[i]) != 0) return die(names[i]);
        close(fds[i]);
    }
    if (chdir("/") != 0) return die("chdir /");
    static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
    child = fork();
    if (child < 0) return die("fork");
    if (child == 0) {
        sa.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
        execvp(argv[2], argv + 2);
        return die(argv[2]);
    }
    int status;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return die("waitpid");
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
