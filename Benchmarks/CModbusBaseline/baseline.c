#include "baseline.h"

#include <modbus/modbus.h>
#include <stdint.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double baseline_read_loop(const char *path, int unit, int address, int count, int transactions) {
    modbus_t *ctx = modbus_new_rtu(path, 115200, 'N', 8, 1);
    if (ctx == NULL) return -1;
    modbus_set_response_timeout(ctx, 0, 100000);
    modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);
    if (modbus_connect(ctx) != 0) {
        modbus_free(ctx);
        return -2;
    }
    modbus_flush(ctx);
    modbus_set_slave(ctx, unit);
    uint16_t registers[125];
    double start = now_seconds();
    for (int i = 0; i < transactions; i++) {
        if (modbus_read_input_registers(ctx, address, count, registers) != count) {
            modbus_close(ctx);
            modbus_free(ctx);
            return -3;
        }
    }
    double elapsed = now_seconds() - start;
    modbus_close(ctx);
    modbus_free(ctx);
    return transactions / elapsed;
}

#include <pthread.h>

struct loop_args { const char *path; int unit, address, count, transactions; double result; };

static void *loop_thread(void *p) {
    struct loop_args *a = p;
    a->result = baseline_read_loop(a->path, a->unit, a->address, a->count, a->transactions);
    return NULL;
}

double baseline_read_loop_on_pthread(const char *path, int unit, int address, int count, int transactions) {
    struct loop_args a = { path, unit, address, count, transactions, 0 };
    pthread_t t;
    if (pthread_create(&t, NULL, loop_thread, &a) != 0) return -4;
    pthread_join(t, NULL);
    return a.result;
}
