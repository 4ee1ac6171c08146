/*
 * The one-shot test handler: reads the request JSON on stdin, writes the output
 * JSON on stdout, logs on stderr. Built with `gcc -static` into a FROM-scratch
 * image by scripts/build-test-images.sh.
 *
 * The behaviour is picked by `"mode": "<name>"` inside the input (a plain text
 * search is enough for the tests' own requests):
 *   echo (default)  {"echo": <the whole request>}
 *   probe           uid/gid, capabilities, no_new_privs, root/tmp writability
 *   mem             allocates and touches memory until killed
 *   fork            forks sleeping children until fork fails, then exits 1
 *   sleep           sleeps forever
 *   net             connects to "host":"a.b.c.d" "port":N, reports the outcome
 *   fail            exits 3 after a line on stderr
 *   tempfail        exits 75 (EX_TEMPFAIL: try again later)
 *   declared        exits 1 with {"error": {...}} on stdout
 *   garbage         writes something that is not JSON
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static char *read_all(int fd, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The string value of "key" (no escapes), copied into out. */
static int string_field(const char *doc, const char *key, char *out, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(doc, pattern);
    if (!p) return 0;
    p += strlen(pattern);
    while (*p == ' ' || *p == ':') p++;
    if (*p != '"') return 0;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < size) out[i++] = *p++;
    out[i] = '\0';
    return 1;
}

static long number_field(const char *doc, const char *key, long fallback) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(doc, pattern);
    if (!p) return fallback;
    p += strlen(pattern);
    while (*p == ' ' || *p == ':') p++;
    return strtol(p, NULL, 10);
}

static void status_line(const char *name, char *out, size_t size) {
    out[0] = '\0';
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    size_t klen = strlen(name);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, klen) == 0 && line[klen] == ':') {
            char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, size, "%s", v);
            break;
        }
    }
    fclose(f);
}

static int writable(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 0;
    close(fd);
    unlink(path);
    return 1;
}

int main(void) {
    size_t len;
    char *request = read_all(0, &len);
    char mode[32] = "echo";
    string_field(request, "mode", mode, sizeof mode);
    fprintf(stderr, "oneshot handler: mode %s, %zu bytes in\n", mode, len);

    if (strcmp(mode, "probe") == 0) {
        char cap_eff[64], nnp[16];
        status_line("CapEff", cap_eff, sizeof cap_eff);
        status_line("NoNewPrivs", nnp, sizeof nnp);
        printf("{\"uid\": %d, \"gid\": %d, \"cap_eff\": \"%s\", \"no_new_privs\": %s, "
               "\"root_writable\": %s, \"tmp_writable\": %s}\n",
               (int)getuid(), (int)getgid(), cap_eff, nnp[0] ? nnp : "null",
               writable("/probe-file") ? "true" : "false",
               writable("/tmp/probe-file") ? "true" : "false");
        return 0;
    }
    if (strcmp(mode, "mem") == 0) {
        for (size_t total = 0;; total += 16u << 20) {
            char *block = malloc(16u << 20);
            if (!block) break;
            memset(block, 1, 16u << 20);
            fprintf(stderr, "allocated %zu MiB\n", (total >> 20) + 16);
        }
        return 1;
    }
    if (strcmp(mode, "fork") == 0) {
        int children = 0;
        for (;;) {
            pid_t pid = fork();
            if (pid == 0) {
                pause();
                _exit(0);
            }
            if (pid < 0) {
                fprintf(stderr, "fork failed after %d children: %s\n", children, strerror(errno));
                kill(0, SIGKILL);
                return 1;
            }
            children++;
        }
    }
    if (strcmp(mode, "sleep") == 0) {
        for (;;) pause();
    }
    if (strcmp(mode, "net") == 0) {
        char host[64] = "127.0.0.1";
        string_field(request, "host", host, sizeof host);
        long port = number_field(request, "port", 80);
        struct sockaddr_in addr = {0};
        addr.sin_family = AF_INET;
        addr.sin_port = htons((unsigned short)port);
        inet_pton(AF_INET, host, &addr.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        int err = errno;
        if (ok) {
            printf("{\"connected\": true}\n");
        } else {
            printf("{\"connected\": false, \"error\": \"%s\"}\n", strerror(err));
        }
        return 0;
    }
    if (strcmp(mode, "fail") == 0) {
        fprintf(stderr, "the handler gives up\n");
        return 3;
    }
    if (strcmp(mode, "tempfail") == 0) {
        fprintf(stderr, "the upstream is busy\n");
        return 75;
    }
    if (strcmp(mode, "declared") == 0) {
        printf("{\"error\": {\"type\": \"quota_exceeded\", \"message\": \"monthly quota used up\", "
               "\"retryable\": false}}\n");
        return 1;
    }
    if (strcmp(mode, "garbage") == 0) {
        printf("this is not json\n");
        return 0;
    }
    /* echo: the request is already JSON */
    while (len > 0 && (request[len - 1] == '\n' || request[len - 1] == ' ')) request[--len] = '\0';
    printf("{\"echo\": %s}\n", len ? request : "null");
    return 0;
}
