/* test_sender under another name (see test_sender.c): two plugins can claim one channel. */
#define TEST_SENDER_NAME "test_sender2"
#include "test_sender.c"
