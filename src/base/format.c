/* Numbers to text without printf: writing token ids one printf call at a time costs more than tokenizing them. */
#include "hone/base.h"

char *hone_format_int32s(char *out, const int32_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i) *out++ = ',';
        int64_t x = v[i];
        if (x < 0) {
            *out++ = '-';
            x = -x;
        }
        char digits[12];
        int k = 0;
        do digits[k++] = (char)('0' + x % 10);
        while (x /= 10);
        while (k) *out++ = digits[--k];
    }
    return out;
}
