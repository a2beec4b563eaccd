#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H

/// Allocations made by the calling thread so far (malloc, calloc, realloc, memalign
/// and friends). Linking this target into an executable interposes glibc's allocator
/// for the whole process; only the benchmark links it.
unsigned long malloc_counter_thread_allocations(void);

#endif
