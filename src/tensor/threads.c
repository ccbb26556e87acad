#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include "hone/tensor.h"

int hone_threads_set(int n) {
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}
