/* placeholder */
#include "migrate.h"
