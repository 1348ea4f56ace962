#ifndef STUB_client
#define STUB_client
#endif
