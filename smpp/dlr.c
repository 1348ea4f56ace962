/* placeholder: written by its owner */
#include "dlr.h"
int dlr_placeholder(void);
int dlr_placeholder(void) { return 0; }
