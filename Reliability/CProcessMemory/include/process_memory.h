#ifndef PROCESS_MEMORY_H
#define PROCESS_MEMORY_H

#include <stddef.h>

/// Bytes the C heap has handed out and not taken back (glibc mallinfo2: small blocks in
/// use in every arena plus mmapped large blocks). Unlike the resident set, this does not
/// count freed memory the allocator keeps for reuse, so it tells a leak from fragmentation.
size_t process_memory_heap_in_use(void);

/// Bytes SQLite has allocated in this process (page caches, statements, schemas).
long long process_memory_sqlite_in_use(void);

#endif
