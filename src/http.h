#ifndef STUB_http
#define STUB_http
#endif
