#ifndef STUB_keys
#define STUB_keys
#endif
