/*
 * config.h - the server's settings, as data.
 *
 * One X-macro table lists every setting: its name (the YAML key, the --flag, and the CONFIG
 * GET/SET name are the same), its kind, default, bounds and whether CONFIG SET may change it
 * at run time. Flags, the YAML loader and CONFIG all go through config_set(), so a value is
 * validated the same way wherever it comes from. Pure: parsing and formatting only.
 */
#ifndef HY_CONFIG_H
#define HY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

enum config_kind { CONFIG_INT, CONFIG_MEMORY, CONFIG_STRING, CONFIG_ENUM };

/* Partitions (Raft groups holding slots) a cluster may be created with. Every group of a node
 * shares the node's one log and WAL thread (io/wal.h); what a group still costs on its own is
 * its store, its Raft state and its timers and heartbeats (docs/partitioning.md). */
#define NODE_PARTITIONS_MAX  4096
/* Replicas of each partition (its Raft group's voters); fixed at creation like the count. A
 * cluster with at most this many members holds every partition on every member. */
#define NODE_RF_MAX          7
#define NODE_RF_DEFAULT      3
/* The replication factor of a cluster created before the setting existed (its cluster file
 * names none): every member holds every partition. Never accepted from a flag or CONFIG. */
#define NODE_RF_EVERY_MEMBER 16
/* A zone or rack name (the failure domains placement spreads replicas over): 1..this many
 * printable characters, no spaces. */
#define NODE_DOMAIN_NAME_MAX 32

/* X(name, field, kind, default text, min, max, runtime-settable, enum values or NULL).
 * INT, MEMORY and ENUM settings are int64_t fields (ENUM holds the index of the value in the
 * '|'-separated list); STRING settings are heap-owned char * fields. */
#define HY_CONFIG_LIST(X)                                                                          \
    X("node-id", node_id, CONFIG_STRING, "n1", 0, 0, 0, NULL)                                      \
    X("bind", bind, CONFIG_STRING, "127.0.0.1", 0, 0, 0, NULL)                                     \
    X("port", port, CONFIG_INT, "7379", 0, 65535, 0, NULL)                                         \
    X("peer-port", peer_port, CONFIG_INT, "17379", 0, 65535, 0, NULL)                              \
    X("http-port", http_port, CONFIG_INT, "-1", -1, 65535, 0, NULL)                                \
    X("data-dir", data_dir, CONFIG_STRING, "./data", 0, 0, 0, NULL)                                \
    X("cluster-name", cluster_name, CONFIG_STRING, "halyard", 0, 0, 0, NULL)                       \
    X("cluster-secret", cluster_secret, CONFIG_STRING, "", 0, 0, 0, NULL)                          \
    X("bootstrap", bootstrap, CONFIG_STRING, "", 0, 0, 0, NULL)                                    \
    X("join", join, CONFIG_STRING, "", 0, 0, 0, NULL)                                              \
    X("role", role, CONFIG_ENUM, "auto", 0, 0, 0, "auto|voter|observer")                           \
    X("redirect", redirect, CONFIG_ENUM, "proxy", 0, 0, 1, "proxy|moved")                          \
    X("log-level", log_level, CONFIG_ENUM, "info", 0, 0, 1, "debug|info|warn|error")               \
    X("wan-passive", wan_passive, CONFIG_ENUM, "no", 0, 0, 1, "no|yes")                            \
    X("wan-passive-keys", wan_passive_keys, CONFIG_STRING, "", 0, 0, 1, NULL)                      \
    X("region-failover-priority", region_failover_priority, CONFIG_STRING, "", 0, 0, 1, NULL)      \
    X("wan-outbox-max-bytes", wan_outbox_max_bytes, CONFIG_MEMORY, "16mb", 1024, 1LL << 30, 1,     \
      NULL)                                                                                        \
    X("wan-queue-full", wan_queue_full, CONFIG_ENUM, "drop-and-resync", 0, 0, 1,                   \
      "drop-and-resync|block-writes")                                                              \
    X("wan-resync-bandwidth", wan_resync_bandwidth, CONFIG_MEMORY, "0", 0, 1LL << 40, 1, NULL)     \
    X("log-format", log_format, CONFIG_ENUM, "text", 0, 0, 1, "text|json")                         \
    X("requirepass", requirepass, CONFIG_STRING, "", 0, 0, 1, NULL)                                \
    X("maxclients", maxclients, CONFIG_INT, "10000", 1, 1000000, 1, NULL)                          \
    X("timeout", timeout, CONFIG_INT, "0", 0, INT32_MAX, 1, NULL)                                  \
    X("maxmemory", maxmemory, CONFIG_MEMORY, "0", 0, INT64_MAX, 1, NULL)                           \
    X("maxmemory-policy", maxmemory_policy, CONFIG_ENUM, "noeviction", 0, 0, 1,                    \
      "noeviction|allkeys-lru|volatile-lru")                                                       \
    X("notify-keyspace-events", notify_keyspace_events, CONFIG_STRING, "", 0, 0, 1, NULL)          \
    X("maxmemory-samples", maxmemory_samples, CONFIG_INT, "5", 1, 64, 1, NULL)                     \
    X("proto-max-bulk-len", proto_max_bulk_len, CONFIG_MEMORY, "512mb", 1024, 512 * 1024 * 1024LL, \
      1, NULL)                                                                                     \
    X("proto-max-multibulk-len", proto_max_multibulk_len, CONFIG_INT, "1048576", 1, INT32_MAX, 1,  \
      NULL)                                                                                        \
    X("proto-max-inline-len", proto_max_inline_len, CONFIG_MEMORY, "64kb", 64,                     \
      512 * 1024 * 1024LL, 1, NULL)                                                                \
    X("client-query-buffer-limit", client_query_buffer_limit, CONFIG_MEMORY, "1gb", 1024 * 1024,   \
      INT64_MAX, 1, NULL)                                                                          \
    X("client-output-buffer-limit", client_output_buffer_limit, CONFIG_MEMORY, "256mb", 0,         \
      INT64_MAX, 1, NULL)                                                                          \
    X("client-output-buffer-limit-pubsub", client_output_buffer_limit_pubsub, CONFIG_MEMORY,       \
      "32mb", 0, INT64_MAX, 1, NULL)                                                               \
    X("hz", hz, CONFIG_INT, "10", 1, 500, 1, NULL)                                                 \
    X("busy-reply-threshold", busy_reply_threshold, CONFIG_INT, "5000", 0, 3600000, 1, NULL)       \
    X("min-replicas-to-write", min_replicas_to_write, CONFIG_INT, "0", 0, 1000, 1, NULL)           \
    X("min-replicas-max-lag", min_replicas_max_lag, CONFIG_INT, "10", 0, 3600, 1, NULL)            \
    X("script-max-instructions", script_max_instructions, CONFIG_INT, "1000000000", 1000,          \
      INT64_MAX, 1, NULL)                                                                          \
    X("request-timeout-ms", request_timeout_ms, CONFIG_INT, "5000", 10, 3600000, 1, NULL)          \
    X("election-timeout-ms", election_timeout_ms, CONFIG_INT, "300", 10, 60000, 0, NULL)           \
    X("heartbeat-ms", heartbeat_ms, CONFIG_INT, "50", 1, 10000, 0, NULL)                           \
    X("peer-ping-timeout-ms", peer_ping_timeout_ms, CONFIG_INT, "2000", 500, 60000, 0, NULL)       \
    X("peer-idle-close-ms", peer_idle_close_ms, CONFIG_INT, "5000", 0, 3600000, 0, NULL)           \
    X("lease-ms", lease_ms, CONFIG_INT, "0", 0, 60000, 0, NULL)                                    \
    X("quiesce-ticks", quiesce_ticks, CONFIG_INT, "4", 0, 1000, 0, NULL)                           \
    X("partitions", partitions, CONFIG_INT, "1", 1, NODE_PARTITIONS_MAX, 0, NULL)                  \
    X("replication-factor", replication_factor, CONFIG_INT, "3", 1, NODE_RF_MAX, 0, NULL)          \
    X("rebalance-max-moves", rebalance_max_moves, CONFIG_INT, "2", 0, 1000, 1, NULL)               \
    X("rebalance-bandwidth", rebalance_bandwidth, CONFIG_MEMORY, "64mb", 0, 1LL << 40, 1, NULL)    \
    X("replace-after-ms", replace_after_ms, CONFIG_INT, "300000", 0, INT64_MAX, 1, NULL)           \
    X("parked-keep-ms", parked_keep_ms, CONFIG_INT, "600000", 0, INT64_MAX, 1, NULL)               \
    X("zone", zone, CONFIG_STRING, "", 0, 0, 0, NULL)                                              \
    X("rack", rack, CONFIG_STRING, "", 0, 0, 0, NULL)                                              \
    X("wal-segment-size", wal_segment_size, CONFIG_MEMORY, "8mb", 4096, 1024 * 1024 * 1024LL, 0,   \
      NULL)                                                                                        \
    X("durability", durability, CONFIG_ENUM, "fsync", 0, 0, 1, "fsync|replicated")                 \
    X("fsync-interval-ms", fsync_interval_ms, CONFIG_INT, "1000", 1, 10000, 1, NULL)               \
    X("snapshot-log-percent", snapshot_log_percent, CONFIG_INT, "100", 10, 10000, 1, NULL)         \
    X("snapshot-log-min", snapshot_log_min, CONFIG_MEMORY, "64mb", 1024 * 1024, 1LL << 40, 1,      \
      NULL)                                                                                        \
    X("snapshot-chunk-bytes", snapshot_chunk_bytes, CONFIG_MEMORY, "64kb", 512, 1024 * 1024, 0,    \
      NULL)                                                                                        \
    X("aclfile", aclfile, CONFIG_STRING, "", 0, 0, 0, NULL)                                        \
    X("alert-webhooks", alert_webhooks, CONFIG_STRING, "", 0, 0, 0, NULL)                          \
    X("alert-lag-entries", alert_lag_entries, CONFIG_INT, "10000", 1, INT64_MAX, 1, NULL)          \
    X("alert-rate-max", alert_rate_max, CONFIG_INT, "60", 1, 1000000, 0, NULL)                     \
    X("alert-rate-window-ms", alert_rate_window_ms, CONFIG_INT, "60000", 100, 86400000, 0, NULL)   \
    X("quorum-rules", quorum_rules, CONFIG_STRING, "", 0, 0, 1, NULL)                              \
    X("tls-port", tls_port, CONFIG_INT, "0", 0, 65535, 0, NULL)                                    \
    X("tls-cert-file", tls_cert_file, CONFIG_STRING, "", 0, 0, 1, NULL)                            \
    X("tls-key-file", tls_key_file, CONFIG_STRING, "", 0, 0, 1, NULL)                              \
    X("tls-key-file-pass", tls_key_file_pass, CONFIG_STRING, "", 0, 0, 1, NULL)                    \
    X("tls-ca-cert-file", tls_ca_cert_file, CONFIG_STRING, "", 0, 0, 1, NULL)                      \
    X("tls-auth-clients", tls_auth_clients, CONFIG_ENUM, "yes", 0, 0, 1, "yes|no|optional")        \
    X("tls-protocols", tls_protocols, CONFIG_STRING, "TLSv1.2 TLSv1.3", 0, 0, 1, NULL)             \
    X("tls-http", tls_http, CONFIG_ENUM, "no", 0, 0, 0, "no|yes")                                  \
    X("tls-cluster", tls_cluster, CONFIG_ENUM, "no", 0, 0, 0, "no|yes")                            \
    X("tls-ca-cert-dir", tls_ca_cert_dir, CONFIG_STRING, "", 0, 0, 1, NULL)                        \
    X("tls-client-cert-file", tls_client_cert_file, CONFIG_STRING, "", 0, 0, 1, NULL)              \
    X("tls-client-key-file", tls_client_key_file, CONFIG_STRING, "", 0, 0, 1, NULL)                \
    X("tls-client-key-file-pass", tls_client_key_file_pass, CONFIG_STRING, "", 0, 0, 1, NULL)      \
    X("tls-ciphers", tls_ciphers, CONFIG_STRING, "", 0, 0, 1, NULL)                                \
    X("tls-ciphersuites", tls_ciphersuites, CONFIG_STRING, "", 0, 0, 1, NULL)                      \
    X("tls-prefer-server-ciphers", tls_prefer_server_ciphers, CONFIG_ENUM, "no", 0, 0, 1,          \
      "no|yes")                                                                                    \
    X("tls-session-caching", tls_session_caching, CONFIG_ENUM, "yes", 0, 0, 1, "no|yes")           \
    X("tls-session-cache-size", tls_session_cache_size, CONFIG_INT, "20480", 0, INT32_MAX, 1,      \
      NULL)                                                                                        \
    X("tls-session-cache-timeout", tls_session_cache_timeout, CONFIG_INT, "300", 1, INT32_MAX, 1,  \
      NULL)                                                                                        \
    X("gossip", gossip, CONFIG_ENUM, "yes", 0, 0, 0, "no|yes")                                     \
    X("gossip-phi-threshold", gossip_phi_threshold, CONFIG_INT, "8", 1, 100, 1, NULL)              \
    X("gossip-probe-interval-ms", gossip_probe_interval_ms, CONFIG_INT, "200", 10, 60000, 1, NULL) \
    X("gossip-probe-timeout-ms", gossip_probe_timeout_ms, CONFIG_INT, "100", 5, 60000, 1, NULL)    \
    X("gossip-suspicion-mult", gossip_suspicion_mult, CONFIG_INT, "3", 1, 100, 1, NULL)            \
    X("gossip-suspicion-max-mult", gossip_suspicion_max_mult, CONFIG_INT, "6", 1, 100, 1, NULL)    \
    X("gossip-indirect-probes", gossip_indirect_probes, CONFIG_INT, "3", 0, 16, 1, NULL)           \
    X("gossip-stall-ms", gossip_stall_ms, CONFIG_INT, "100", 0, 60000, 1, NULL)                    \
    X("gossip-lag-window-ms", gossip_lag_window_ms, CONFIG_INT, "30000", 0, 3600000, 1, NULL)      \
    X("gossip-lag-grace-max-ms", gossip_lag_grace_max_ms, CONFIG_INT, "2000", 0, 60000, 1, NULL)

/* Values of "log-format": text lines, or one JSON object per line. */
enum config_log_format { CONFIG_LOG_TEXT = 0, CONFIG_LOG_JSON = 1 };

/* Values of "durability" (docs/operations.md "Data directory and durability"): a write is
 * acknowledged once a majority fdatasync'd it, or once a majority wrote it (each node then
 * fdatasyncs at most fsync-interval-ms later). */
enum config_durability { CONFIG_DURABILITY_FSYNC = 0, CONFIG_DURABILITY_REPLICATED = 1 };

/* Values of "role" (a joining node's): auto = the role the member was added with, else voter. */
enum config_role { CONFIG_ROLE_AUTO = 0, CONFIG_ROLE_VOTER = 1, CONFIG_ROLE_OBSERVER = 2 };

#define CONFIG_SETTINGS_MAX 96 /* room in per-setting arrays; config.c asserts the table fits */

#define HY__CONFIG_CTYPE_CONFIG_INT    int64_t
#define HY__CONFIG_CTYPE_CONFIG_MEMORY int64_t
#define HY__CONFIG_CTYPE_CONFIG_ENUM   int64_t
#define HY__CONFIG_CTYPE_CONFIG_STRING char *

struct hy_config {
#define HY__CONFIG_FIELD(name, field, kind, def, min, max, rt, values) \
    HY__CONFIG_CTYPE_##kind field;
    HY_CONFIG_LIST(HY__CONFIG_FIELD)
#undef HY__CONFIG_FIELD
    /* Not settings: facts about the process that the shell fills in for INFO. */
    long pid;
    /* The config file's line (1-based) each setting came from; 0 = default or a flag. For
     * errors that only the combination of settings shows (config_check). */
    uint32_t file_line[CONFIG_SETTINGS_MAX];
    int joined; /* the data dir belongs to a node that joined (no bootstrap configuration) */
    int formed; /* the data dir's cluster file was there at start: its log must be too */
    char config_file[4096];
    char executable[4096];
};

/* Fills every setting with its default. Strings are heap-owned by cfg. */
void config_init(struct hy_config *cfg);
void config_free(struct hy_config *cfg);

/*
 * Sets `name` from its text form. `runtime` is nonzero for CONFIG SET (refuses settings that
 * cannot change while running). Returns HY_OK, or HY_ENOTFOUND for an unknown name, or
 * HY_EINVAL with a reason in err (room for 160 bytes).
 */
int config_set(struct hy_config *cfg, const char *name, const char *value, int runtime,
               char *err) HY_MUST_CHECK;

/* Writes the current value of setting number i (0 <= i < config_count()) as text. */
void config_get(const struct hy_config *cfg, size_t i, char *out, size_t cap);
size_t config_count(void);

/* notify-keyspace-events: Redis's class letters (K E g $ l s h z x e t m d n, A for
 * g$lshzxetd) as its NOTIFY_* bits; 0 when a letter is unknown. Format writes Redis's
 * canonical form ("AKE", "gKE"), which CONFIG GET answers. */
#define CONFIG_NOTIFY_KEYSPACE 1u
#define CONFIG_NOTIFY_KEYEVENT 2u
int config_notify_parse(const char *text, unsigned *flags_out);
void config_notify_format(unsigned flags, char *out, size_t cap);
const char *config_name(size_t i);
/* 1 when setting number i is a secret (cluster-secret, requirepass): CONFIG GET, INFO and
 * the logs never show its value. */
int config_is_secret(size_t i);
/* What CONFIG GET shows for a secret that is set (an unset one shows ""). */
#define CONFIG_REDACTED "(redacted)"
/* Index of setting `name` (case-insensitive), or -1. */
int config_index(const char *name);

/* Settings that are each valid but cannot work together (e.g. a heartbeat so slow that
 * followers time out between two of them). Returns HY_OK, or HY_ECONFIG with the reason in err
 * (cap bytes) and in *blame_out the index of the setting to point the operator at. */
int config_check(const struct hy_config *cfg, char *err, size_t cap, int *blame_out) HY_MUST_CHECK;

/* Settings whose default derives from others, filled once every source was read: http-port
 * -1 becomes port + 1000 (docs/architecture.md "Interfaces"), or 0 (no HTTP) past 65535. */
void config_derive(struct hy_config *cfg);

/* Parses "100", "10kb", "5mb", "1gb" (case-insensitive; k/m/g = 1000^n, kb/mb/gb = 1024^n, as
 * Redis). Returns 1 on success. */
int config_parse_memory(const char *s, int64_t *out);

/* Whether `name` may be a zone or rack: empty (none), or up to NODE_DOMAIN_NAME_MAX printable
 * characters without spaces (they are written into replies, logs and the partition map's
 * neighbours in the metadata group). */
int config_domain_name_ok(const char *name);
/* Whether `list` may be region-failover-priority: empty (none), or 1 to
 * NODE_REGION_PRIORITY_MAX cluster names (1 to 64 of A-Z a-z 0-9 _ - .) separated by commas,
 * none twice. */
#define NODE_REGION_PRIORITY_MAX 8
int config_region_priority_ok(const char *list);

#endif
