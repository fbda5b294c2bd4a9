/* The main() of a Check suite and its test cases, in one place for every C
 * suite (tests/unit, tests/server). */
#ifndef CHARRNN_TESTS_CHECK_RUN_H
#define CHARRNN_TESTS_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of s (each in a child process, so a crash is a failed test,
 * not a dead run); the exit status: EXIT_FAILURE if any failed. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Adds a test case made of the given tests (a NULL-terminated list). */
static inline TCase *add_case(Suite *s, const char *name, const TTest *const *tests)
{
    TCase *tc = tcase_create(name);
    for (; *tests; tests++)
        tcase_add_test(tc, *tests);
    suite_add_tcase(s, tc);
    return tc;
}
#define ADD_CASE(suite, name, ...) add_case(suite, name, (const TTest *const[]){__VA_ARGS__, NULL})

/* main() of a suite with one test case of the same name. */
#define RUN_TESTS(name, ...)                                                                       \
    do {                                                                                           \
        Suite *s_ = suite_create(name);                                                            \
        ADD_CASE(s_, name, __VA_ARGS__);                                                           \
        return run_suite(s_);                                                                      \
    } while (0)

#endif
