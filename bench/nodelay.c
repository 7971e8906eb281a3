/* bench/nodelay.c: LD_PRELOAD shim that sets TCP_NODELAY on every accepted TCP socket.
 *
 * bench/dns.sh (MODE=tcp) runs a second knotd under it (knot-nd): knotd leaves Nagle's
 * algorithm on, which on loopback moves the sending of its answers onto the client's CPU.
 * With the shim its answers leave at once from its own CPU, as pdm's do. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void set_nodelay(int fd) {
    int one = 1, type = 0;
    socklen_t len = sizeof(type);
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = dlsym(RTLD_NEXT, "accept");
    int c = real(fd, addr, len);
    set_nodelay(c);
    return c;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, len, flags);
    set_nodelay(c);
    return c;
}
