#define _GNU_SOURCE
#include "CLinuxShims.h"
#include <errno.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stdio.h>

int CLinuxShims_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int CLinuxShims_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int CLinuxShims_epoll_wait(int epfd, CLinuxShims_event *events, int maxevents, int timeout_ms) {
    struct epoll_event raw[256];
    if (maxevents > 256) maxevents = 256;
    int n = epoll_wait(epfd, raw, maxevents, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i].events = raw[i].events;
        events[i].data = raw[i].data.u64;
    }
    return n;
}

int CLinuxShims_epoll_ctl_add(void) { return EPOLL_CTL_ADD; }
int CLinuxShims_epoll_ctl_mod(void) { return EPOLL_CTL_MOD; }
int CLinuxShims_epoll_ctl_del(void) { return EPOLL_CTL_DEL; }

int CLinuxShims_eventfd(unsigned int initval) {
    return eventfd(initval, EFD_CLOEXEC | EFD_NONBLOCK);
}

int CLinuxShims_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

#include <spawn.h>
int CLinuxShims_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
int CLinuxShims_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

#include <pthread.h>
int CLinuxShims_set_thread_name(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof truncated, "%s", name);
    return pthread_setname_np(pthread_self(), truncated);
}
int CLinuxShims_get_thread_name(char *buffer, size_t size) {
    return pthread_getname_np(pthread_self(), buffer, size);
}

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
int CLinuxShims_lower_thread_priority(int increment) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, tid);
    if (current == -1 && errno != 0) return -1;
    return setpriority(PRIO_PROCESS, tid, current + increment);
}
int CLinuxShims_thread_nice(void) {
    return getpriority(PRIO_PROCESS, (pid_t)syscall(SYS_gettid));
}
