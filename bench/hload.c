/* A small HTTP/1.1 load generator for the bench when wrk is missing (bench/http_bench.py).
 *
 *   hload HOST PORT PATH SECONDS CONNECTIONS [-H "Name: value"]... [-b BODY] [-P FILE]
 *
 * One thread per connection, each a closed loop over one keep-alive connection (as wrk's
 * connections are): send, read the whole answer (Content-Length or chunked), repeat. With -b
 * the request is a POST of BODY (application/json). With -P the GETs go to the paths listed in
 * FILE, one per line, each request to the next (PATH is then ignored), so that a server that
 * keeps what it rendered is measured reading each path for the first time. Prints requests, seconds, rps, latency
 * percentiles (ms), and counts by status class; a C client, so the load generator costs the
 * server little CPU (its own share is measured and reported by http_bench.py).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LAT 2000000
#define BUF 262144

static const char *host; static int port; static double seconds;
static char request[65536]; static size_t request_len;
static double *lat; static long lat_n; static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long by_class[6], errors;
static double t_end;
static char headers[32768] = "";
static char **paths; static long path_count, path_next;  /* -P: the paths, the next to read */

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(port); inet_pton(AF_INET, host, &a.sin_addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
    return fd;
}

/* Read one whole response; return its status, or -1 when the connection failed/closed. */
static int read_response(int fd, char *buf) {
    size_t have = 0; char *end = NULL;
    while (!end) {
        ssize_t n = recv(fd, buf + have, BUF - 1 - have, 0);
        if (n <= 0) return -1;
        have += n; buf[have] = 0; end = strstr(buf, "\r\n\r\n");
        if (!end && have >= BUF - 1) return -1;
    }
    int status = atoi(buf + 9);
    size_t head = end + 4 - buf, body = have - head;
    long length = -1; int chunked = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (!strncasecmp(line, "Content-Length:", 15)) length = atol(line + 15);
        if (!strncasecmp(line, "Transfer-Encoding:", 18) && strstr(line, "chunked") < strstr(line, "\r\n")) chunked = 1;
    }
    if (status == 304 || status == 204 || (status >= 100 && status < 200)) return status;
    if (!chunked) {
        if (length < 0) return -1;  /* no framing: not keep-alive material */
        while ((long)body < length) {
            ssize_t n = recv(fd, buf, BUF, 0);
            if (n <= 0) return -1;
            body += n;
        }
        return status;
    }
    /* chunked: keep the unread part in buf and walk the chunks */
    memmove(buf, buf + head, body); have = body; buf[have] = 0;
    for (;;) {
        char *crlf;
        while (!(crlf = strstr(buf, "\r\n"))) {
            ssize_t n = recv(fd, buf + have, BUF - 1 - have, 0);
            if (n <= 0) return -1;
            have += n; buf[have] = 0;
        }
        long size = strtol(buf, NULL, 16);
        size_t need = (crlf + 2 - buf) + size + 2;
        while (have < need) {
            ssize_t n = recv(fd, buf + have, BUF - 1 - have, 0);
            if (n <= 0) return -1;
            have += n; buf[have] = 0;
        }
        memmove(buf, buf + need, have - need); have -= need; buf[have] = 0;
        if (size == 0) return status;
    }
}

static void *client(void *unused) {
    (void)unused;
    char *buf = malloc(BUF), *own = malloc(sizeof request);
    int fd = dial();
    while (now() < t_end) {
        if (fd < 0) { pthread_mutex_lock(&lock); errors++; pthread_mutex_unlock(&lock); usleep(10000); fd = dial(); continue; }
        const char *out = request; size_t out_len = request_len;
        if (path_count) {
            const char *path = paths[__sync_fetch_and_add(&path_next, 1) % path_count];
            out_len = snprintf(own, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n", path, host, port, headers);
            out = own;
        }
        double began = now();
        int status = send(fd, out, out_len, MSG_NOSIGNAL) == (ssize_t)out_len ? read_response(fd, buf) : -1;
        double took = now() - began;
        pthread_mutex_lock(&lock);
        if (status < 0) errors++;
        else { by_class[status / 100 < 6 ? status / 100 : 5]++; if (lat_n < MAX_LAT) lat[lat_n++] = took; }
        pthread_mutex_unlock(&lock);
        if (status < 0) { close(fd); fd = dial(); }
    }
    if (fd >= 0) close(fd);
    free(buf); free(own);
    return NULL;
}

static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: hload HOST PORT PATH SECONDS CONNECTIONS [-H header]... [-b body] [-P paths-file]\n"); return 2; }
    host = argv[1]; port = atoi(argv[2]); seconds = atof(argv[4]);
    int conns = atoi(argv[5]);
    const char *body = NULL, *path_file = NULL;
    for (int i = 6; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-H")) { strcat(headers, argv[i + 1]); strcat(headers, "\r\n"); }
        else if (!strcmp(argv[i], "-b")) body = argv[i + 1];
        else if (!strcmp(argv[i], "-P")) path_file = argv[i + 1];
    }
    if (path_file) {
        FILE *f = fopen(path_file, "r"); char line[2048]; long room = 1024;
        if (!f) { perror(path_file); return 2; }
        paths = malloc(sizeof(char *) * room);
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!*line) continue;
            if (path_count == room) paths = realloc(paths, sizeof(char *) * (room *= 2));
            paths[path_count++] = strdup(line);
        }
        fclose(f);
        if (!path_count) { fprintf(stderr, "%s: no paths\n", path_file); return 2; }
    }
    if (body)
        request_len = snprintf(request, sizeof request, "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                               argv[3], host, port, headers, strlen(body), body);
    else
        request_len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n", argv[3], host, port, headers);
    lat = malloc(sizeof(double) * MAX_LAT);
    pthread_t threads[256];
    if (conns > 256) conns = 256;
    double began = now(); t_end = began + seconds;
    for (int i = 0; i < conns; i++) pthread_create(&threads[i], NULL, client, NULL);
    for (int i = 0; i < conns; i++) pthread_join(threads[i], NULL);
    double took = now() - began;
    qsort(lat, lat_n, sizeof(double), cmp);
    #define P(q) (lat_n ? lat[(long)((lat_n - 1) * (q))] * 1000 : 0.0)
    printf("requests %ld\nseconds %.3f\nrps %.1f\np50_ms %.3f\np99_ms %.3f\n", lat_n, took, lat_n / took, P(0.5), P(0.99));
    printf("2xx %ld\n3xx %ld\n4xx %ld\n5xx %ld\nerrors %ld\n", by_class[2], by_class[3], by_class[4], by_class[5], errors);
    return 0;
}
