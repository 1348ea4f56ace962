#ifndef STUB_util
#define STUB_util
#endif
