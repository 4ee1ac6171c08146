/*
 * text.stats: counts the characters, words and lines of input.text and estimates its reading
 * time. A one-shot container handler: the request JSON on stdin
 * ({"config": ..., "input": ..., "context": ...}), the result JSON on stdout. Built with
 * `gcc -static` into a FROM-scratch image (no libc in the image, nothing pulled).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

static long config_number(const char *doc, const char *key, long fallback) {
    const char *config = strstr(doc, "\"config\": {");
    const char *input = strstr(doc, "\"input\": ");
    const char *at = config ? strstr(config, key) : NULL;
    if (!at || (input && at > input)) return fallback;
    at = strchr(at, ':');
    long value = at ? strtol(at + 1, NULL, 10) : 0;
    return value > 0 ? value : fallback;
}

int main(void) {
    size_t len;
    char *doc = read_all(&len);
    if (!doc) return 75;
    const char *input = strstr(doc, "\"input\": ");
    const char *text = input ? strstr(input, "\"text\": \"") : NULL;
    if (!text) {
        printf("{\"error\": {\"type\": \"invalid_input\", \"message\": \"input.text (a string) is required\", "
               "\"retryable\": false}}\n");
        return 1;
    }
    long chars = 0, words = 0, lines = 0, wpm = config_number(doc, "\"words_per_minute\"", 200);
    int in_word = 0, any = 0;
    for (const unsigned char *p = (const unsigned char *)text + 9; *p && *p != '"'; p++) {
        int space = 0, newline = 0;
        if (*p == '\\') {
            p++;
            if (!*p) break;
            if (*p == 'n') newline = space = 1;
            else if (*p == 't' || *p == 'r') space = 1;
            else if (*p == 'u') p += 4 <= strlen((const char *)p + 1) ? 4 : 0;
        } else if (*p == ' ') {
            space = 1;
        } else if ((*p & 0xC0) == 0x80) {
            continue; /* a UTF-8 continuation byte: same character */
        }
        chars++;
        any = 1;
        lines += newline;
        if (space) in_word = 0;
        else if (!in_word) { in_word = 1; words++; }
    }
    lines += any;
    printf("{\"characters\": %ld, \"words\": %ld, \"lines\": %ld, \"reading_seconds\": %ld}\n",
           chars, words, lines, (words * 60 + wpm - 1) / wpm);
    return 0;
}
