//! Compiles the public API (`proto/sentio/v1/*.proto`) into Rust, plus the file descriptor
//! set that the reflection service serves (so grpcurl works without the proto files).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh machine needs no system protoc: use the vendored one unless PROTOC is set.
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment yet.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("sentio_v1_descriptor.bin"))
        .compile_protos(&["proto/sentio/v1/emotion.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    allocator_options();
    Ok(())
}

/// Compiles `src/allocator_options.c` against the mimalloc header that libmimalloc-sys built
/// (it exports the folder as `DEP_MIMALLOC_INCLUDE_DIR`), for `src/main.rs::tune_allocator`.
fn allocator_options() {
    let include = std::env::var("DEP_MIMALLOC_INCLUDE_DIR")
        .expect("libmimalloc-sys states its include folder (links = \"mimalloc\")");
    cc::Build::new()
        .file("src/allocator_options.c")
        .include(include)
        .compile("sentio_allocator_options");
    println!("cargo:rerun-if-changed=src/allocator_options.c");
}
