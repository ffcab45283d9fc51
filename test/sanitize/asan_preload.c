/*-------------------------------------------------------------------------
 *
 * asan_preload.c
 *	  Preloaded after the ASan runtime into every process that loads an
 *	  instrumented seriesweb (make test SANITIZE=1, make fuzz), so that the
 *	  runtime can start at all in PostgreSQL's binaries.
 *
 * With LD_PRELOAD=libasan.so, ASan initializes at the first malloc, and in
 * postgres and psql that happens inside a library constructor that holds
 * glibc's locale lock (libgpg-error's bindtextdomain, p11-kit's
 * newlocale).  ASan's initialization looks up swift_demangle with dlsym,
 * then calls dlerror() to clear the failure; dlerror translates its message
 * with gettext, which takes the same lock, and the process hangs before
 * main (seen with gcc 12's libasan and clang 14's, glibc 2.36).  When the
 * symbol exists, dlsym succeeds, dlerror has nothing to translate, and
 * initialization goes through.  ASan calls it only to demangle Swift
 * symbol names, and there are none here.
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>

char *swift_demangle(const char *mangled, size_t mangled_len, char *out, size_t *out_len,
					 unsigned flags);

char *
swift_demangle(const char *mangled, size_t mangled_len, char *out, size_t *out_len, unsigned flags)
{
	return NULL;
}
