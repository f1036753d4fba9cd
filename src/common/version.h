/*
 * version.h - the one place the release number lives, and the Redis version whose replies
 * halyard matches (reported by INFO and HELLO so tools that check it keep working).
 */
#ifndef HY_VERSION_H
#define HY_VERSION_H

#define HY_VERSION              "0.1.0"
#define HY_REDIS_COMPAT_VERSION "7.0.0"

#endif
