/* Build tool: turns a file into a C source defining
 *   const unsigned char NAME[]; const unsigned long NAME_len;
 * so the daemon carries its playground page without reading files at run time.
 * usage: embed_file INPUT OUTPUT NAME */
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: embed_file INPUT OUTPUT NAME\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "w");
    if (!in || !out) {
        perror(in ? argv[2] : argv[1]);
        return 1;
    }
    fprintf(out, "/* generated from %s by embed_file; do not edit */\n", argv[1]);
    fprintf(out, "const unsigned char %s[] = {", argv[3]);
    unsigned long n = 0;
    int c;
    while ((c = fgetc(in)) != EOF)
        fprintf(out, "%s0x%02x,", n++ % 16 ? "" : "\n", c);
    fprintf(out, "0x00};\nconst unsigned long %s_len = %lu;\n", argv[3], n);
    int bad = ferror(in) || fclose(out);
    fclose(in);
    return bad ? 1 : 0;
}
