#ifndef CLINUXSHIMS_H
#define CLINUXSHIMS_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

/* Glibc's Swift module does not expose epoll, eventfd or accept4. */

#define CLinuxShims_EPOLLIN 0x001u
#define CLinuxShims_EPOLLOUT 0x004u
#define CLinuxShims_EPOLLERR 0x008u
#define CLinuxShims_EPOLLHUP 0x010u
#define CLinuxShims_EPOLLRDHUP 0x2000u
#define CLinuxShims_EPOLLET (1u << 31)

typedef struct {
    uint32_t events;
    uint64_t data;
} CLinuxShims_event;

int CLinuxShims_epoll_create(void);
int CLinuxShims_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int CLinuxShims_epoll_wait(int epfd, CLinuxShims_event *events, int maxevents, int timeout_ms);
int CLinuxShims_epoll_ctl_add(void);
int CLinuxShims_epoll_ctl_mod(void);
int CLinuxShims_epoll_ctl_del(void);

int CLinuxShims_eventfd(unsigned int initval);
int CLinuxShims_accept4(int fd, struct sockaddr *addr, socklen_t *len);



#include <spawn.h>
/* GNU extensions to posix_spawn file actions, hidden from Swift without _GNU_SOURCE. */
int CLinuxShims_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
int CLinuxShims_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/* pthread_setname_np / pthread_getname_np for the calling thread (GNU extensions). */
int CLinuxShims_set_thread_name(const char *name);
int CLinuxShims_get_thread_name(char *buffer, size_t size);
/* Adds `increment` to the calling thread's nice value (Linux schedules threads one by one);
   0 or -1 with errno, as setpriority. */
int CLinuxShims_lower_thread_priority(int increment);
/* The calling thread's nice value. */
int CLinuxShims_thread_nice(void);
#endif
