// epoll(7) and eventfd(2), which Swift's Glibc module does not bring in: the
// completion event loop (Verbs) and SoftVerbs' channels use them.
#include <sys/epoll.h>
#include <sys/eventfd.h>
