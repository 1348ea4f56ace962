#ifndef STUB_session
#define STUB_session
#endif
