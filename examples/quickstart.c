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
#include <string.h>

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
    /* The typed helpers for the common commands... */
    halyard_reply *r = NULL;
    const char *hello = "hello from libhalyard";
    halyard_status st = halyard_set(c, "greeting", hello, strlen(hello), &r);
    printf("SET: %s (%s)\n", halyard_status_str(st), r ? r->str : "");
    halyard_reply_free(r);
    st = halyard_get(c, "greeting", &r);
    printf("GET: %s (%s)\n", halyard_status_str(st), r && r->str ? r->str : "");
    halyard_reply_free(r);
    long long value = 0;
    st = halyard_incrby(c, "quickstart:counter", 1, &value, &r);
    if (st == HALYARD_OK) {
        printf("INCR: %lld\n", value);
    } else {
        printf("INCR: %s (%s)\n", halyard_status_str(st), r ? r->str : "");
    }
    halyard_reply_free(r);
    /* ...and any command as an argument vector. */
    const char *append[] = {"APPEND", "greeting", "!"};
    halyard_status st2 = halyard_command(c, 3, append, NULL, &r);
    if (st2 == HALYARD_OK) {
        printf("APPEND: %lld\n", r->integer);
    } else {
        printf("APPEND: %s (%s)\n", halyard_status_str(st2), r ? r->str : "");
    }
    halyard_reply_free(r);
    long long removed = 0;
    halyard_status st3 = halyard_del(c, "greeting", &removed, &r);
    printf("DEL: %s (%lld)\n", halyard_status_str(st3), removed);
    halyard_reply_free(r);
    if (st == HALYARD_OK) {
        st = st2 != HALYARD_OK ? st2 : st3;
    }
    halyard_close(c);
    return st == HALYARD_OK ? 0 : 1;
}
