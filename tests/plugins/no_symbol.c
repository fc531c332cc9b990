/* Test plugin that exports no entry point. */
#include <rabta/plugin.h>

int no_symbol_placeholder(void);
int no_symbol_placeholder(void)
{
    return 42;
}
