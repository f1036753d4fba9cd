/*
 * script_libs.c - cmsgpack and struct for scripts (script_libs.h), written for halyard to
 * behave as the versions Redis 7.0 embeds: the same encodings byte for byte, the same limits
 * and the same error texts, since scripts written for Redis compare packed strings and match
 * errors.
 *
 * cmsgpack. A Lua number that holds an integer exactly is packed as the smallest MessagePack
 * integer that holds it; any other number as a float32 when that loses nothing, else a
 * float64. A table whose keys are exactly 1..n is an array (an empty table too), any other a
 * map. Tables nested deeper than MP_NESTING_MAX pack as nil, which is how a table that holds
 * itself still packs (as a deep copy cut at that depth). The packed bytes grow in a buffer
 * owned by a userdata, so an error raised halfway (out of memory) frees it at the state's
 * close instead of leaking it.
 */
#include "node/script_libs.h"

#include <ctype.h>
#include <float.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* lua-cmsgpack's depth limit, which Redis's test suite checks: the 17th level packs as nil. */
#define MP_NESTING_MAX 16
#define MP_BUF_META    "hy.cmsgpack.buf"
/* 2^63 as a double: the first magnitude an int64_t cannot hold. */
#define MP_TWO_POW_63  9223372036854775808.0

/* ---- the output buffer ----------------------------------------------------------------------- */

struct mp_buf {
    uint8_t *bytes;
    size_t len, cap;
};

static int mp_buf_gc(lua_State *L)
{
    struct mp_buf *buf = lua_touserdata(L, 1);
    if (buf->bytes != NULL) {
        void *ud;
        lua_Alloc alloc = lua_getallocf(L, &ud);
        (void)alloc(ud, buf->bytes, buf->cap, 0);
        buf->bytes = NULL;
        buf->cap = 0;
    }
    return 0;
}

/* Pushes a new empty buffer (a userdata freed by the collector) and returns it. */
static struct mp_buf *mp_buf_push(lua_State *L)
{
    struct mp_buf *buf = lua_newuserdata(L, sizeof(*buf));
    buf->bytes = NULL;
    buf->len = 0;
    buf->cap = 0;
    if (luaL_newmetatable(L, MP_BUF_META)) {
        lua_pushcfunction(L, mp_buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return buf;
}

static void mp_buf_add(lua_State *L, struct mp_buf *buf, const void *p, size_t n)
{
    if (buf->cap - buf->len < n) {
        size_t cap = buf->cap < 64 ? 64 : buf->cap;
        while (cap - buf->len < n) {
            if (cap > SIZE_MAX / 2) {
                luaL_error(L, "not enough memory");
            }
            cap *= 2;
        }
        /* The state's allocator, so the script's memory limit counts the buffer. */
        void *ud;
        lua_Alloc alloc = lua_getallocf(L, &ud);
        uint8_t *bytes = alloc(ud, buf->bytes, buf->cap, cap);
        if (bytes == NULL) {
            luaL_error(L, "not enough memory");
        }
        buf->bytes = bytes;
        buf->cap = cap;
    }
    memcpy(buf->bytes + buf->len, p, n);
    buf->len += n;
}

/* Appends tag followed by the n low bytes of v, most significant first (MessagePack is big
 * endian throughout). */
static void mp_add_tagged(lua_State *L, struct mp_buf *buf, uint8_t tag, uint64_t v, int n)
{
    uint8_t head[9];
    head[0] = tag;
    for (int i = n; i >= 1; i--) {
        head[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    mp_buf_add(L, buf, head, (size_t)n + 1);
}

/* ---- packing --------------------------------------------------------------------------------- */

static void mp_pack_int(lua_State *L, struct mp_buf *buf, int64_t n)
{
    uint64_t u = (uint64_t)n;
    if (n >= 0) {
        if (n <= 0x7f) {
            mp_add_tagged(L, buf, (uint8_t)n, 0, 0);
        } else if (n <= 0xff) {
            mp_add_tagged(L, buf, 0xcc, u, 1);
        } else if (n <= 0xffff) {
            mp_add_tagged(L, buf, 0xcd, u, 2);
        } else if (n <= 0xffffffffLL) {
            mp_add_tagged(L, buf, 0xce, u, 4);
        } else {
            mp_add_tagged(L, buf, 0xcf, u, 8);
        }
    } else {
        /* Negative: the two's complement's low bytes are the value at every width. */
        if (n >= -32) {
            mp_add_tagged(L, buf, (uint8_t)(u & 0xff), 0, 0);
        } else if (n >= INT8_MIN) {
            mp_add_tagged(L, buf, 0xd0, u, 1);
        } else if (n >= INT16_MIN) {
            mp_add_tagged(L, buf, 0xd1, u, 2);
        } else if (n >= INT32_MIN) {
            mp_add_tagged(L, buf, 0xd2, u, 4);
        } else {
            mp_add_tagged(L, buf, 0xd3, u, 8);
        }
    }
}

static void mp_pack_number(lua_State *L, struct mp_buf *buf, double d)
{
    if (d >= -MP_TWO_POW_63 && d < MP_TWO_POW_63 && d == floor(d)) {
        mp_pack_int(L, buf, (int64_t)d);
        return;
    }
    /* The range test comes first: converting a double beyond float's range is undefined. */
    if (isinf(d) || (fabs(d) <= FLT_MAX && (double)(float)d == d)) {
        float f = (float)d;
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        mp_add_tagged(L, buf, 0xca, bits, 4);
    } else {
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        mp_add_tagged(L, buf, 0xcb, bits, 8);
    }
}

static void mp_pack_string(lua_State *L, struct mp_buf *buf, int idx)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len < 32) {
        mp_add_tagged(L, buf, (uint8_t)(0xa0 | len), 0, 0);
    } else if (len <= 0xff) {
        mp_add_tagged(L, buf, 0xd9, len, 1);
    } else if (len <= 0xffff) {
        mp_add_tagged(L, buf, 0xda, len, 2);
    } else {
        mp_add_tagged(L, buf, 0xdb, len, 4);
    }
    mp_buf_add(L, buf, s, len);
}

/* Whether the table at idx has exactly the keys 1..n (no key repeats in a table, so n keys
 * that are all positive integers, the largest being n, are 1..n). */
static int mp_table_is_array(lua_State *L, int idx)
{
    double count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        double k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (k < 1 || k != floor(k)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
        max = k > max ? k : max;
    }
    return max == count;
}

static void mp_pack_value(lua_State *L, struct mp_buf *buf, int level);

static void mp_pack_table(lua_State *L, struct mp_buf *buf, int level)
{
    int t = lua_gettop(L);
    luaL_checkstack(L, 3, "in function mp_pack_table");
    if (mp_table_is_array(L, t)) {
        size_t n = lua_objlen(L, t);
        if (n <= 15) {
            mp_add_tagged(L, buf, (uint8_t)(0x90 | n), 0, 0);
        } else if (n <= 0xffff) {
            mp_add_tagged(L, buf, 0xdc, n, 2);
        } else {
            mp_add_tagged(L, buf, 0xdd, n, 4);
        }
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, t, (int)i);
            mp_pack_value(L, buf, level + 1);
            script_lib_checkpoint(L, i);
        }
        return;
    }
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        n++;
    }
    if (n <= 15) {
        mp_add_tagged(L, buf, (uint8_t)(0x80 | n), 0, 0);
    } else if (n <= 0xffff) {
        mp_add_tagged(L, buf, 0xde, n, 2);
    } else {
        mp_add_tagged(L, buf, 0xdf, n, 4);
    }
    lua_pushnil(L);
    for (size_t i = 1; lua_next(L, t) != 0; i++) {
        /* A copy of the key is packed (and popped), so lua_next still has the original. */
        lua_pushvalue(L, -2);
        mp_pack_value(L, buf, level + 1);
        mp_pack_value(L, buf, level + 1);
        script_lib_checkpoint(L, i);
    }
}

/* Packs the value on the top of the stack and pops it. */
static void mp_pack_value(lua_State *L, struct mp_buf *buf, int level)
{
    int type = lua_type(L, -1);
    if (type == LUA_TTABLE && level >= MP_NESTING_MAX) {
        type = LUA_TNIL;
    }
    switch (type) {
    case LUA_TBOOLEAN: mp_add_tagged(L, buf, lua_toboolean(L, -1) ? 0xc3 : 0xc2, 0, 0); break;
    case LUA_TNUMBER: mp_pack_number(L, buf, lua_tonumber(L, -1)); break;
    case LUA_TSTRING: mp_pack_string(L, buf, lua_gettop(L)); break;
    case LUA_TTABLE: mp_pack_table(L, buf, level); break;
    default:
        /* nil, and what MessagePack cannot carry (functions, userdata, threads). */
        mp_add_tagged(L, buf, 0xc0, 0, 0);
        break;
    }
    lua_pop(L, 1);
}

/* cmsgpack.pack(v1, ...): the values packed one after the other in one string. */
static int mp_pack(lua_State *L)
{
    int nargs = lua_gettop(L);
    if (nargs == 0) {
        return luaL_argerror(L, 0, "MessagePack pack needs input.");
    }
    if (!lua_checkstack(L, 4)) {
        return luaL_argerror(L, 0, "Too many arguments for MessagePack pack.");
    }
    struct mp_buf *buf = mp_buf_push(L);
    for (int i = 1; i <= nargs; i++) {
        lua_pushvalue(L, i);
        mp_pack_value(L, buf, 0);
    }
    lua_pushlstring(L, (const char *)buf->bytes, buf->len);
    return 1;
}

/* ---- unpacking ------------------------------------------------------------------------------- */

enum { MP_OK, MP_EOF, MP_BADFMT };

struct mp_cur {
    const uint8_t *p;
    size_t left;
    int err;
};

/* Takes n bytes (returned) from the input, or marks it truncated and returns NULL. */
static const uint8_t *mp_take(struct mp_cur *c, size_t n)
{
    if (c->left < n) {
        c->err = MP_EOF;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

/* Reads an n-byte big-endian unsigned integer into *v; 0 when the input is short. */
static int mp_take_uint(struct mp_cur *c, int n, uint64_t *v)
{
    const uint8_t *p = mp_take(c, (size_t)n);
    if (p == NULL) {
        return 0;
    }
    uint64_t x = 0;
    for (int i = 0; i < n; i++) {
        x = x << 8 | p[i];
    }
    *v = x;
    return 1;
}

static void mp_unpack_value(lua_State *L, struct mp_cur *c);

static void mp_unpack_array(lua_State *L, struct mp_cur *c, uint64_t n)
{
    lua_newtable(L);
    luaL_checkstack(L, 1, "in function mp_unpack_array");
    for (uint64_t i = 1; i <= n; i++) {
        mp_unpack_value(L, c);
        if (c->err != MP_OK) {
            return;
        }
        lua_rawseti(L, -2, (int)i);
        script_lib_checkpoint(L, i);
    }
}

static void mp_unpack_map(lua_State *L, struct mp_cur *c, uint64_t n)
{
    lua_newtable(L);
    luaL_checkstack(L, 2, "in function mp_unpack_map");
    for (uint64_t i = 0; i < n; i++) {
        mp_unpack_value(L, c);
        if (c->err != MP_OK) {
            return;
        }
        mp_unpack_value(L, c);
        if (c->err != MP_OK) {
            return;
        }
        lua_settable(L, -3);
        script_lib_checkpoint(L, i + 1);
    }
}

static void mp_unpack_string(lua_State *L, struct mp_cur *c, uint64_t len)
{
    const uint8_t *p = mp_take(c, len);
    if (p != NULL) {
        lua_pushlstring(L, (const char *)p, len);
    }
}

/* Integers, floats and the fixed-width headers (tags 0xc0-0xdf). */
static void mp_unpack_tagged(lua_State *L, struct mp_cur *c, uint8_t tag)
{
    static const int widths[4] = {1, 2, 4, 8};
    uint64_t v;
    switch (tag) {
    case 0xc0: lua_pushnil(L); return;
    case 0xc2: lua_pushboolean(L, 0); return;
    case 0xc3: lua_pushboolean(L, 1); return;
    case 0xca:
        if (mp_take_uint(c, 4, &v)) {
            uint32_t bits = (uint32_t)v;
            float f;
            memcpy(&f, &bits, sizeof(f));
            lua_pushnumber(L, (lua_Number)f);
        }
        return;
    case 0xcb:
        if (mp_take_uint(c, 8, &v)) {
            double d;
            memcpy(&d, &v, sizeof(d));
            lua_pushnumber(L, (lua_Number)d);
        }
        return;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (mp_take_uint(c, widths[tag - 0xcc], &v)) {
            lua_pushnumber(L, (lua_Number)v);
        }
        return;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int w = widths[tag - 0xd0];
        if (mp_take_uint(c, w, &v)) {
            /* Sign-extends the w-byte two's complement value. */
            int shift = 64 - 8 * w;
            int64_t s = (int64_t)(v << shift) >> shift;
            lua_pushnumber(L, (lua_Number)s);
        }
        return;
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
        if (mp_take_uint(c, widths[tag - 0xd9], &v)) {
            mp_unpack_string(L, c, v);
        }
        return;
    case 0xdc:
    case 0xdd:
        if (mp_take_uint(c, tag == 0xdc ? 2 : 4, &v)) {
            mp_unpack_array(L, c, v);
        }
        return;
    case 0xde:
    case 0xdf:
        if (mp_take_uint(c, tag == 0xde ? 2 : 4, &v)) {
            mp_unpack_map(L, c, v);
        }
        return;
    default:
        /* bin, ext and the reserved 0xc1 are not part of lua-cmsgpack 0.4.0. */
        c->err = MP_BADFMT;
        return;
    }
}

/* Pushes the next value of the input, or sets c->err (then what was pushed does not matter:
 * the caller raises an error). */
static void mp_unpack_value(lua_State *L, struct mp_cur *c)
{
    /* The Lua stack's limit (about 8000 slots) bounds how deep input nesting can go, and so
     * this recursion. */
    luaL_checkstack(L, 1, "in function mp_unpack_value");
    const uint8_t *p = mp_take(c, 1);
    if (p == NULL) {
        return;
    }
    uint8_t tag = *p;
    if (tag <= 0x7f) {
        lua_pushnumber(L, (lua_Number)tag);
    } else if (tag >= 0xe0) {
        lua_pushnumber(L, (lua_Number)(int8_t)tag);
    } else if (tag >= 0xa0 && tag <= 0xbf) {
        mp_unpack_string(L, c, tag & 0x1f);
    } else if (tag >= 0x90 && tag <= 0x9f) {
        mp_unpack_array(L, c, tag & 0x0f);
    } else if (tag >= 0x80 && tag <= 0x8f) {
        mp_unpack_map(L, c, tag & 0x0f);
    } else {
        mp_unpack_tagged(L, c, tag);
    }
}

/*
 * Unpacks up to limit values of the string at index 1 from byte offset. limit and offset
 * both 0 means every value, returned alone; otherwise the values follow the offset of the
 * next value (-1 when the input is consumed), as lua-cmsgpack's unpack_one and unpack_limit.
 */
static int mp_unpack_from(lua_State *L, int limit, int offset)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int all = limit == 0 && offset == 0;
    if (offset < 0 || limit < 0) {
        /* lua-cmsgpack prints the input's length where it says limit; kept, since scripts
         * written for Redis may match the text. */
        return luaL_error(L, "Invalid request to unpack with offset of %d and limit of %d.", offset,
                          (int)len);
    }
    if ((size_t)offset > len) {
        return luaL_error(L, "Start offset %d greater than input length %d.", offset, (int)len);
    }
    struct mp_cur c = {(const uint8_t *)s + offset, len - (size_t)offset, MP_OK};
    int count = 0;
    for (; c.left > 0 && (all || count < limit); count++) {
        mp_unpack_value(L, &c);
        if (c.err == MP_EOF) {
            return luaL_error(L, "Missing bytes in input.");
        }
        if (c.err == MP_BADFMT) {
            return luaL_error(L, "Bad data format in input.");
        }
    }
    if (all) {
        return count;
    }
    luaL_checkstack(L, 1, "in function mp_unpack_from");
    lua_pushinteger(L, c.left == 0 ? -1 : (lua_Integer)(len - c.left));
    /* The offset goes first, just above the input string the caller left at index 1. */
    lua_insert(L, 2);
    return count + 1;
}

static int mp_unpack(lua_State *L)
{
    return mp_unpack_from(L, 0, 0);
}

static int mp_unpack_one(lua_State *L)
{
    int offset = (int)luaL_optinteger(L, 2, 0);
    lua_settop(L, 1);
    return mp_unpack_from(L, 1, offset);
}

static int mp_unpack_limit(lua_State *L)
{
    int limit = (int)luaL_checkinteger(L, 2);
    int offset = (int)luaL_optinteger(L, 3, 0);
    lua_settop(L, 1);
    return mp_unpack_from(L, limit, offset);
}

int script_luaopen_cmsgpack(lua_State *L)
{
    static const luaL_Reg fns[] = {{"pack", mp_pack},
                                   {"unpack", mp_unpack},
                                   {"unpack_one", mp_unpack_one},
                                   {"unpack_limit", mp_unpack_limit},
                                   {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushliteral(L, "cmsgpack");
    lua_setfield(L, -2, "_NAME");
    /* The version whose behaviour this follows, as scripts checking it expect. */
    lua_pushliteral(L, "lua-cmsgpack 0.4.0");
    lua_setfield(L, -2, "_VERSION");
    return 1;
}

/* ---- struct ---------------------------------------------------------------------------------- */

/*
 * A format is a string of items, each a letter and an optional size: b/B h/H l/L T i/I[n]
 * integers (lower case signed), f float, d double, x a zero byte, c[n] n bytes of a string
 * (c0: all of it when packing; the length just unpacked when unpacking), s a zero-terminated
 * string, and the controls '<' (little endian), '>' (big endian), '![n]' (align items to at
 * most n bytes) and ' '. Items are aligned to min(their size, the alignment), which is 1
 * until '!' raises it.
 */

#define ST_INT_SIZE_MAX 32

struct st_double_align {
    char c;
    double d;
};

/* '!' without a number: the platform's largest alignment of a double or an int. */
#define ST_ALIGN_DEFAULT                                                                     \
    (offsetof(struct st_double_align, d) > sizeof(int) ? offsetof(struct st_double_align, d) \
                                                       : sizeof(int))

struct st_state {
    int big_endian;
    size_t align;
};

static int st_native_big_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 0;
}

static void st_init(struct st_state *st)
{
    st->big_endian = st_native_big_endian();
    st->align = 1;
}

/* Reads the number at *fmt, if any (else dflt), and moves past it. */
static size_t st_read_num(lua_State *L, const char **fmt, size_t dflt)
{
    if (!isdigit((unsigned char)**fmt)) {
        return dflt;
    }
    size_t n = 0;
    while (isdigit((unsigned char)**fmt)) {
        int digit = *(*fmt)++ - '0';
        if (n > (size_t)(INT_MAX - digit) / 10) {
            luaL_error(L, "integral size overflow");
        }
        n = n * 10 + (size_t)digit;
    }
    return n;
}

/* The size of item opt, reading its number from *fmt; 0 for strings and controls. */
static size_t st_item_size(lua_State *L, int opt, const char **fmt)
{
    switch (opt) {
    case 'b':
    case 'B': return sizeof(char);
    case 'h':
    case 'H': return sizeof(short);
    case 'l':
    case 'L': return sizeof(long);
    case 'T': return sizeof(size_t);
    case 'f': return sizeof(float);
    case 'd': return sizeof(double);
    case 'x': return 1;
    case 'c': return st_read_num(L, fmt, 1);
    case 'i':
    case 'I': {
        size_t n = st_read_num(L, fmt, sizeof(int));
        if (n > ST_INT_SIZE_MAX) {
            luaL_error(L, "integral size %d is larger than limit of %d", (int)n, ST_INT_SIZE_MAX);
        }
        return n;
    }
    default: return 0;
    }
}

/* Padding bytes before an item of this size at offset pos. The mask arithmetic is the
 * original library's, kept for sizes that are not powers of two (i3) to pad as it does. */
static size_t st_padding(const struct st_state *st, int opt, size_t size, size_t pos)
{
    if (size == 0 || opt == 'c') {
        return 0;
    }
    size_t a = size < st->align ? size : st->align;
    return (a - (pos & (a - 1))) & (a - 1);
}

static void st_control(lua_State *L, struct st_state *st, int opt, const char **fmt)
{
    switch (opt) {
    case ' ': return;
    case '<': st->big_endian = 0; return;
    case '>': st->big_endian = 1; return;
    case '!': {
        size_t a = st_read_num(L, fmt, ST_ALIGN_DEFAULT);
        if (a == 0 || (a & (a - 1)) != 0) {
            luaL_error(L, "alignment %d is not a power of 2", (int)a);
        }
        st->align = a;
        return;
    }
    default: luaL_argerror(L, 1, lua_pushfstring(L, "invalid format option '%c'", opt)); return;
    }
}

/* Reverses the n native bytes at p when the format's byte order is not the machine's. */
static void st_to_order(const struct st_state *st, uint8_t *p, size_t n)
{
    if (st->big_endian == st_native_big_endian()) {
        return;
    }
    for (size_t i = 0, j = n - 1; i < j; i++, j--) {
        uint8_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

static void st_pack_int(lua_State *L, luaL_Buffer *b, const struct st_state *st, int arg,
                        size_t size)
{
    lua_Number n = luaL_checknumber(L, arg);
    uint64_t v;
    /* Out of range, the conversion is undefined in C; these are what Redis's build gives on
     * x86-64 (the most negative integer below, 0 above). */
    if (n < 0) {
        v = n <= -MP_TWO_POW_63 ? (uint64_t)INT64_MIN : (uint64_t)(int64_t)n;
    } else {
        v = n >= 2 * MP_TWO_POW_63 ? 0 : (uint64_t)n;
    }
    uint8_t bytes[ST_INT_SIZE_MAX];
    /* Least significant byte first; past eight bytes the value has no more (zeros). */
    for (size_t i = 0; i < size; i++) {
        bytes[st->big_endian ? size - 1 - i : i] = (uint8_t)(v & 0xff);
        v = i < 7 ? v >> 8 : 0;
    }
    luaL_addlstring(b, (const char *)bytes, size);
}

/* struct.pack(fmt, v1, ...): the values packed as fmt says, in one string. */
static int st_pack(lua_State *L)
{
    const char *fmt = luaL_checkstring(L, 1);
    struct st_state st;
    st_init(&st);
    int arg = 2;
    size_t total = 0;
    luaL_Buffer b;
    /* A placeholder between the arguments and the buffer's stack slots. */
    lua_pushnil(L);
    luaL_buffinit(L, &b);
    while (*fmt != '\0') {
        int opt = *fmt++;
        size_t size = st_item_size(L, opt, &fmt);
        size_t pad = st_padding(&st, opt, size, total);
        total += pad;
        for (size_t i = 0; i < pad; i++) {
            luaL_addchar(&b, '\0');
        }
        switch (opt) {
        case 'b':
        case 'B':
        case 'h':
        case 'H':
        case 'l':
        case 'L':
        case 'T':
        case 'i':
        case 'I': st_pack_int(L, &b, &st, arg++, size); break;
        case 'x': luaL_addchar(&b, '\0'); break;
        case 'f': {
            float f = (float)luaL_checknumber(L, arg++);
            uint8_t bytes[sizeof(f)];
            memcpy(bytes, &f, sizeof(f));
            st_to_order(&st, bytes, sizeof(f));
            luaL_addlstring(&b, (const char *)bytes, sizeof(f));
            break;
        }
        case 'd': {
            double d = luaL_checknumber(L, arg++);
            uint8_t bytes[sizeof(d)];
            memcpy(bytes, &d, sizeof(d));
            st_to_order(&st, bytes, sizeof(d));
            luaL_addlstring(&b, (const char *)bytes, sizeof(d));
            break;
        }
        case 'c':
        case 's': {
            size_t len;
            const char *s = luaL_checklstring(L, arg++, &len);
            size = size == 0 ? len : size;
            /* The original names the argument after the string; kept for the same text. */
            luaL_argcheck(L, len >= size, arg, "string too short");
            luaL_addlstring(&b, s, size);
            if (opt == 's') {
                luaL_addchar(&b, '\0');
                size++;
            }
            break;
        }
        default: st_control(L, &st, opt, &fmt); break;
        }
        total += size;
    }
    luaL_pushresult(&b);
    return 1;
}

static lua_Number st_unpack_int(const struct st_state *st, const uint8_t *p, size_t size,
                                int is_signed)
{
    /* The eight least significant bytes hold the value (wider integers are zero beyond). */
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++) {
        v = v << 8 | p[st->big_endian ? i : size - 1 - i];
    }
    if (!is_signed || size == 0) {
        return (lua_Number)v;
    }
    if (size < 8) {
        int shift = 64 - 8 * (int)size;
        return (lua_Number)((int64_t)(v << shift) >> shift);
    }
    return (lua_Number)(int64_t)v;
}

/* Pushes the item opt of size bytes at data + pos, setting *size to the bytes it took; returns
 * how many values it pushed (0 or 1; -1 when a c0 consumed the length pushed before it). */
static int st_unpack_item(lua_State *L, const struct st_state *st, int opt, const char *data,
                          size_t len, size_t pos, size_t *size, int pushed)
{
    const uint8_t *p = (const uint8_t *)data + pos;
    switch (opt) {
    case 'b':
    case 'B':
    case 'h':
    case 'H':
    case 'l':
    case 'L':
    case 'T':
    case 'i':
    case 'I': lua_pushnumber(L, st_unpack_int(st, p, *size, islower(opt))); return 1;
    case 'f': {
        uint8_t bytes[sizeof(float)];
        memcpy(bytes, p, sizeof(bytes));
        st_to_order(st, bytes, sizeof(bytes));
        float f;
        memcpy(&f, bytes, sizeof(f));
        lua_pushnumber(L, (lua_Number)f);
        return 1;
    }
    case 'd': {
        uint8_t bytes[sizeof(double)];
        memcpy(bytes, p, sizeof(bytes));
        st_to_order(st, bytes, sizeof(bytes));
        double d;
        memcpy(&d, bytes, sizeof(d));
        lua_pushnumber(L, (lua_Number)d);
        return 1;
    }
    case 'c': {
        int consumed = 0;
        if (*size == 0) {
            if (pushed == 0 || !lua_isnumber(L, -1)) {
                luaL_error(L, "format 'c0' needs a previous size");
            }
            lua_Number n = lua_tonumber(L, -1);
            *size = n > 0 && n < (lua_Number)SIZE_MAX ? (size_t)n : 0;
            lua_pop(L, 1);
            consumed = 1;
            luaL_argcheck(L, *size <= len && pos <= len - *size, 2, "data string too short");
        }
        lua_pushlstring(L, (const char *)p, *size);
        return 1 - consumed;
    }
    case 's': {
        const uint8_t *end = memchr(p, '\0', len - pos);
        if (end == NULL) {
            luaL_error(L, "unfinished string in data");
        }
        *size = (size_t)(end - p) + 1;
        lua_pushlstring(L, (const char *)p, *size - 1);
        return 1;
    }
    default: return 0;
    }
}

/* struct.unpack(fmt, data [, pos]): the values fmt describes in data from position pos (1 by
 * default), then the position after them. */
static int st_unpack(lua_State *L)
{
    const char *fmt = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer start = luaL_optinteger(L, 3, 1) - 1;
    /* A start past the end is not refused here: the first item finds the data too short. */
    luaL_argcheck(L, start >= 0, 3, "offset must be 1 or greater");
    size_t pos = (size_t)start;
    struct st_state st;
    st_init(&st);
    int pushed = 0;
    while (*fmt != '\0') {
        int opt = *fmt++;
        size_t size = st_item_size(L, opt, &fmt);
        pos += st_padding(&st, opt, size, pos);
        luaL_argcheck(L, size <= len && pos <= len - size, 2, "data string too short");
        luaL_checkstack(L, 2, "too many results");
        if (strchr("bBhHlLTiIfdcsx", opt) == NULL) {
            st_control(L, &st, opt, &fmt);
        } else {
            pushed += st_unpack_item(L, &st, opt, data, len, pos, &size, pushed);
        }
        pos += size;
    }
    lua_pushinteger(L, (lua_Integer)pos + 1);
    return pushed + 1;
}

/* struct.size(fmt): the bytes fmt packs into (an error for s and c0, whose size varies). */
static int st_size(lua_State *L)
{
    const char *fmt = luaL_checkstring(L, 1);
    struct st_state st;
    st_init(&st);
    size_t pos = 0;
    while (*fmt != '\0') {
        int opt = *fmt++;
        size_t size = st_item_size(L, opt, &fmt);
        pos += st_padding(&st, opt, size, pos);
        if (opt == 's') {
            luaL_argerror(L, 1, "option 's' has no fixed size");
        } else if (opt == 'c' && size == 0) {
            luaL_argerror(L, 1, "option 'c0' has no fixed size");
        }
        if (!isalnum(opt)) {
            st_control(L, &st, opt, &fmt);
        }
        pos += size;
    }
    lua_pushinteger(L, (lua_Integer)pos);
    return 1;
}

int script_luaopen_struct(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"pack", st_pack}, {"unpack", st_unpack}, {"size", st_size}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
