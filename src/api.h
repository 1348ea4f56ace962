#ifndef STUB_api
#define STUB_api
#endif
