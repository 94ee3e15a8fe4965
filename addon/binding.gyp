{
  "targets": [
    {
      "target_name": "wgjit",
      "sources": ["wgjit.cc", "capture.cc", "xdp_program.cc", "raw_send.cc", "noise_responder.cc", "noise_crypto.cc", "netlink_socket.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf"
      ],
      "cflags": ["<!@(pkg-config --cflags libsodium libb2)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["<!@(pkg-config --libs libbpf libsodium libb2)"]
    }
  ]
}
