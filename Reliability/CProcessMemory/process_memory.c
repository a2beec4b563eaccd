#include "process_memory.h"

#include <malloc.h>
#include <sqlite3.h>

size_t process_memory_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

long long process_memory_sqlite_in_use(void) {
    return (long long)sqlite3_memory_used();
}
