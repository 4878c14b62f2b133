/*
 * The supervisor of the (pretend) ACME switch: it checks a login against a
 * fixed authentication table.  Two arrays in .rodata: `users` (names) and
 * `hashes` (their password hashes).  Empty slots are all zeros.
 */
#define SLOTS 8

const char users[SLOTS][16] = {
    "admin",
    "operator",
    "monitor",
};

const unsigned int hashes[SLOTS] = {
    0x5f4dcc3bu,
    0x2ab96390u,
    0x0d107d09u,
};

static unsigned int hash(const char *s)
{
    unsigned int h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int same(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

int auth_check(const char *user, const char *password)
{
    int attempts_allowed = 3;
    for (int i = 0; i < SLOTS; i++) {
        if (users[i][0] && same(users[i], user))
            return hash(password) == hashes[i] && attempts_allowed > 0;
    }
    return 0;
}

volatile int result;

void _start(void)
{
    result = auth_check("admin", "secret");
    for (;;)
        ;
}
