#include "common/assert.h"

#include <stdio.h>
#include <stdlib.h>

void hy_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "halyard: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}
