#ifndef CSERIALPORT_SHIM_H
#define CSERIALPORT_SHIM_H
#include <libserialport.h>
#endif
