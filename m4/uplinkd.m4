dnl UPLINKD_CHECK_PKG(VAR, MODULES, DEBIAN-PACKAGE)
dnl pkg-config check that names the Debian package to install on failure.
AC_DEFUN([UPLINKD_CHECK_PKG], [
	PKG_CHECK_MODULES([$1], [$2], [],
	    [AC_MSG_ERROR([$2 not found; install the Debian package $3])])
])
