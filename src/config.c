/* placeholder: written by its owner */
#include "config.h"
int config_placeholder(void);
int config_placeholder(void) { return 0; }
