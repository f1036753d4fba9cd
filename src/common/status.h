/*
 * status.h - the one status enum of the project.
 *
 * Every fallible function in halyard returns an `int` that is either HY_OK (0) or one of the
 * codes below. The list is an X-macro so that the enum and hy_strerror() can never drift apart.
 * Codes are stable: append new ones at the end.
 */
#ifndef HY_STATUS_H
#define HY_STATUS_H

#define HY_STATUS_LIST(X)              \
    X(HY_OK, "ok")                     \
    X(HY_ENOMEM, "out of memory")      \
    X(HY_EIO, "input/output error")    \
    X(HY_ECORRUPT, "corrupt data")     \
    X(HY_ENOTLEADER, "not the leader") \
    X(HY_EPROTO, "protocol error")     \
    X(HY_ETOOBIG, "too big")           \
    X(HY_EINVAL, "invalid argument")   \
    X(HY_EAGAIN, "need more data")     \
    X(HY_ENOTFOUND, "not found")       \
    X(HY_EEXIST, "already exists")     \
    X(HY_ENOSPC, "no space left")      \
    X(HY_EWRONGTYPE, "wrong type")     \
    X(HY_ERANGE, "out of range")       \
    X(HY_EBUSY, "busy")                \
    X(HY_ENOQUORUM, "no quorum")       \
    X(HY_ECLOSED, "closed")            \
    X(HY_ETIMEDOUT, "timed out")       \
    X(HY_ECONFIG, "invalid configuration")

enum hy_status {
#define HY__STATUS_ENUM(name, text) name,
    HY_STATUS_LIST(HY__STATUS_ENUM)
#undef HY__STATUS_ENUM
        HY_STATUS_COUNT
};

/* Returns a static, human-readable description of `status`; never NULL. */
const char *hy_strerror(int status);

/* Returns the symbolic name of `status` ("HY_EIO"); never NULL. */
const char *hy_status_name(int status);

#define HY_MUST_CHECK __attribute__((warn_unused_result))

#endif
