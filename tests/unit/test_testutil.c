/* Check suite of the test helpers themselves (testutil.h): a comparison with
 * the PyTorch reference that cannot fail proves nothing, so its verdict is
 * tested here against NaN, infinities and values just outside the tolerance. */
#include "testutil.h"

#include <check.h>
#include <math.h>

#define N 4
#define REL 1e-5
#define ABS 1e-6

START_TEST(equal_and_close_arrays_pass)
{
    const float want[N] = {1.0f, -2.5f, 0.0f, 3e-7f};
    const float same[N] = {1.0f, -2.5f, 0.0f, 3e-7f};
    ck_assert_uint_eq(close_worst(same, want, N, REL, ABS), N);
    ck_assert_uint_eq(close_worst(same, want, N, 0.0, 0.0), N);
    /* within rel*|want| + abs, with half of the tolerance to spare */
    const float close[N] = {1.0f + 5e-6f, -2.5f - 1e-5f, 5e-7f, 0.0f};
    ck_assert_uint_eq(close_worst(close, want, N, REL, ABS), N);
    ck_assert_uint_eq(close_worst(want, want, 0, REL, ABS), 0); /* nothing to compare */
}
END_TEST

START_TEST(values_outside_the_tolerance_fail)
{
    const float want[N] = {1.0f, -2.5f, 0.0f, 100.0f};
    const float got[N] = {1.0f, -2.5f - 1e-4f, 0.0f, 100.01f}; /* two out, the last worse */
    ck_assert_uint_eq(close_worst(got, want, N, REL, ABS), 3);
    const float one[N] = {1.0f, -2.5f, 2e-6f, 100.0f}; /* only the absolute floor applies */
    ck_assert_uint_eq(close_worst(one, want, N, REL, ABS), 2);
}
END_TEST

/* A NaN or an infinity in either array fails, whatever the tolerance; so does
 * an infinity against an equal one (a reference holds none) and against a
 * finite value where rel*|inf| would make the tolerance infinite. */
START_TEST(non_finite_values_fail)
{
    const float want[N] = {1.0f, -2.5f, 0.0f, 3.0f};
    const float special[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t s = 0; s < sizeof special / sizeof special[0]; s++)
        for (size_t i = 0; i < N; i++) {
            float got[N], ref[N];
            memcpy(got, want, sizeof got);
            memcpy(ref, want, sizeof ref);
            got[i] = special[s];
            ck_assert_msg(close_worst(got, want, N, REL, ABS) == i, "got[%zu] = %g passed", i,
                          (double)special[s]);
            ck_assert_msg(close_worst(got, want, N, 1e30, 1e30) == i,
                          "got[%zu] = %g passed a huge tolerance", i, (double)special[s]);
            ck_assert_msg(close_worst(want, got, N, REL, ABS) == i, "want[%zu] = %g passed", i,
                          (double)special[s]);
            ref[i] = special[s];
            ck_assert_msg(close_worst(got, ref, N, REL, ABS) == i, "%g against itself passed",
                          (double)special[s]);
        }
    /* a non-finite value is worse than any finite difference */
    const float got[N] = {1e6f, -2.5f, NAN, 3.0f};
    ck_assert_uint_eq(close_worst(got, want, N, REL, ABS), 2);
}
END_TEST

int main(void)
{
    RUN_TESTS("testutil", equal_and_close_arrays_pass, values_outside_the_tolerance_fail,
              non_finite_values_fail);
}
