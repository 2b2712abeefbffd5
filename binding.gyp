{
  # faultline's N-API addon over libfuse3's low-level API (src/native/faultline_fuse.c).
  # Built implicitly by `npm ci` / `npm install` (node-gyp rebuild). Without libfuse3-dev
  # (pkg-config fuse3) or off Linux the target is empty: the build succeeds, and
  # src/fuse/native.ts reports "addon not built" when a mount is attempted.
  "variables": {
    "have_fuse3%": "<!(pkg-config --exists fuse3 2>/dev/null && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "faultline_fuse",
      "conditions": [
        ["OS=='linux' and have_fuse3==1", {
          "sources": ["src/native/faultline_fuse.c"],
          "cflags": ["<!@(pkg-config fuse3 --cflags)"],
          "cflags_c": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"],
          "libraries": ["<!@(pkg-config fuse3 --libs)"],
          "defines": ["NAPI_VERSION=8"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
