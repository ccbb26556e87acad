/* Content hashing for cache keys: a 128-bit non-cryptographic hash at memory speed (and FNV-1a for short strings).
 *
 * Four 64-bit lanes each absorb one 8-byte little-endian word of every 32-byte block (multiply, rotate,
 * multiply: every input bit reaches every lane bit within two rounds); the tail and the length are absorbed
 * last, and two different cross-lane finalisations give the two halves. Keys only need to tell different
 * files apart, not resist an adversary. */
#include "hone/base.h"

#include <string.h>

#define PRIME_A 0x9E3779B185EBCA87ull
#define PRIME_B 0xC2B2AE3D27D4EB4Full
#define PRIME_C 0x165667B19E3779F9ull
#define PRIME_D 0x85EBCA77C2B2AE63ull

static uint64_t rotl64(uint64_t x, int r) { return x << r | x >> (64 - r); }

static uint64_t load_le64(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
#endif
}

static uint64_t absorb(uint64_t lane, uint64_t word) { return rotl64(lane + word * PRIME_B, 31) * PRIME_A; }

/* Full avalanche of one 64-bit value. */
static uint64_t finish(uint64_t h) {
    h ^= h >> 33;
    h *= PRIME_B;
    h ^= h >> 29;
    h *= PRIME_C;
    h ^= h >> 32;
    return h;
}

void hone_hash128(const void *data, size_t n, uint64_t seed, uint64_t out[2]) {
    const uint8_t *p = data;
    uint64_t lane[4] = {seed + PRIME_A + PRIME_B, seed + PRIME_B, seed, seed - PRIME_A};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) lane[k] = absorb(lane[k], load_le64(p + i + 8 * k));
    uint8_t tail[32] = {0};
    memcpy(tail, p + i, n - i);
    tail[31] = (uint8_t)(n - i); /* tells "abc" from "abc\0" */
    for (int k = 0; k < 4; k++) lane[k] = absorb(lane[k], load_le64(tail + 8 * k));
    const uint64_t len = (uint64_t)n * PRIME_D;
    out[0] = finish(rotl64(lane[0], 1) + rotl64(lane[1], 7) + rotl64(lane[2], 12) + rotl64(lane[3], 18) + len);
    out[1] = finish((lane[0] ^ lane[3]) * PRIME_C + (lane[1] ^ lane[2]) * PRIME_D + ~len);
}

void hone_hash128_hex(const uint64_t h[2], char hex[33]) {
    static const char digits[] = "0123456789abcdef";
    for (int half = 0; half < 2; half++)
        for (int d = 0; d < 16; d++) hex[half * 16 + d] = digits[(h[half] >> (60 - 4 * d)) & 15];
    hex[32] = '\0';
}

uint64_t hone_fnv1a64(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
