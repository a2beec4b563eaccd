#ifndef CMODBUS_BASELINE_H
#define CMODBUS_BASELINE_H

/// A plain C libmodbus client loop: opens `path` as RTU at 115200 8N1, reads `count`
/// input registers from `address` of `unit` `transactions` times, and returns the
/// transactions per second, or a negative number if any transaction failed.
double baseline_read_loop(const char *path, int unit, int address, int count, int transactions);


/// The same loop on a fresh pthread (the caller waits for it).
double baseline_read_loop_on_pthread(const char *path, int unit, int address, int count, int transactions);
#endif
