#include "common/status.h"

static const char *const status_text[] = {
#define HY__STATUS_TEXT(name, text) text,
    HY_STATUS_LIST(HY__STATUS_TEXT)
#undef HY__STATUS_TEXT
};

static const char *const status_names[] = {
#define HY__STATUS_NAME(name, text) #name,
    HY_STATUS_LIST(HY__STATUS_NAME)
#undef HY__STATUS_NAME
};

const char *hy_strerror(int status)
{
    if (status < 0 || status >= HY_STATUS_COUNT) {
        return "unknown status";
    }
    return status_text[status];
}

const char *hy_status_name(int status)
{
    if (status < 0 || status >= HY_STATUS_COUNT) {
        return "HY_E?";
    }
    return status_names[status];
}
