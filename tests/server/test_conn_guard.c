/* Check suite for the client key of the connection limits (server/conn_guard.c):
 * an IPv4 address, the /64 of an IPv6 one (so one host's /64 is one client),
 * IPv4-mapped IPv6 as its IPv4 address. */
#include "check_run.h"
#include "conn_guard.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

static void key_of(const char *addr, uint8_t key[16])
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, addr, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, addr, &a->sin_addr), 1);
    }
    ck_assert_int_eq(conn_guard_key((struct sockaddr *)&ss, key), 1);
}

static int same(const char *a, const char *b)
{
    uint8_t ka[16], kb[16];
    key_of(a, ka);
    key_of(b, kb);
    return !memcmp(ka, kb, 16);
}

START_TEST(ipv6_per_64)
{
    ck_assert(same("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
    ck_assert(same("2001:db8:1:2:aaaa::", "2001:db8:1:2:5555:1234::9"));
    ck_assert(!same("2001:db8:1:2::1", "2001:db8:1:3::1"));
    ck_assert(!same("2001:db8:1:2::1", "2001:db9:1:2::1"));
}
END_TEST

START_TEST(ipv4_and_mapped)
{
    ck_assert(same("192.0.2.7", "::ffff:192.0.2.7"));
    ck_assert(!same("192.0.2.7", "192.0.2.8"));
    ck_assert(!same("127.0.0.2", "127.0.0.3"));
    /* an IPv6 /64 whose first bytes spell an IPv4 address is another client */
    ck_assert(!same("192.0.2.7", "c000:207::1"));
}
END_TEST

START_TEST(other_family)
{
    struct sockaddr sa = {.sa_family = AF_UNIX};
    uint8_t key[16];
    ck_assert_int_eq(conn_guard_key(&sa, key), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conn_guard");
    ADD_CASE(s, "key", ipv6_per_64, ipv4_and_mapped, other_family);
    return run_suite(s);
}
