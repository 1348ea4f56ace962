#ifndef STUB_router
#define STUB_router
#endif
