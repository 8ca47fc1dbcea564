//! `#[suite::test]`: the one test attribute of the test suite (tests/suite). It keeps the function as
//! written and registers it with the suite's harness (`crate::harness::Case`), which names and runs it.
//!
//! Options, comma-separated:
//! - `each_engine`: an `async fn(engine: Engine)`, run once per engine as `name::sqlite` and
//!   `name::postgres`, so a SQLite failure never hides the PostgreSQL result;
//! - `multi_thread`: a two-worker tokio runtime instead of the current-thread one;
//! - `isolated`: run in a process of its own (for tests that read the process's own memory);
//! - `requires = path`: a `fn() -> Result<(), String>` checked before the test runs; when it fails
//!   the test is reported as ignored (skipped, with the reason), or fails in CI.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{ItemFn, Meta, Token, parse_macro_input};

#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = parse_macro_input!(item as ItemFn);
    let options = match Punctuated::<Meta, Token![,]>::parse_terminated.parse(args) {
        Ok(options) => options,
        Err(error) => return error.to_compile_error().into(),
    };
    let mut each_engine = false;
    let mut multi_thread = false;
    let mut isolated = false;
    let mut requires = quote!(::core::option::Option::None);
    for option in &options {
        match option {
            Meta::Path(path) if path.is_ident("each_engine") => each_engine = true,
            Meta::Path(path) if path.is_ident("multi_thread") => multi_thread = true,
            Meta::Path(path) if path.is_ident("isolated") => isolated = true,
            Meta::NameValue(pair) if pair.path.is_ident("requires") => {
                let check = &pair.value;
                requires = quote!(::core::option::Option::Some(#check));
            }
            other => {
                return syn::Error::new_spanned(other, "expected each_engine, multi_thread, isolated or requires = fn")
                    .to_compile_error()
                    .into();
            }
        }
    }

    let name = &function.sig.ident;
    let is_async = function.sig.asyncness.is_some();
    let takes_engine = !function.sig.inputs.is_empty();
    if each_engine != takes_engine {
        return syn::Error::new_spanned(&function.sig, "an each_engine test takes exactly `engine: Engine`")
            .to_compile_error()
            .into();
    }
    let call = match (is_async, each_engine) {
        (true, true) => quote!(crate::harness::block_on(#multi_thread, #name(engine.expect("an engine")))),
        (true, false) => quote!(crate::harness::block_on(#multi_thread, #name())),
        (false, true) => quote!(#name(engine.expect("an engine"))),
        (false, false) => quote!(#name()),
    };
    let expanded = quote! {
        #function

        const _: () = {
            fn run(engine: ::core::option::Option<crate::common::Engine>) {
                let _ = &engine;
                #call
            }
            ::inventory::submit! {
                crate::harness::Case {
                    module: ::core::module_path!(),
                    name: ::core::stringify!(#name),
                    each_engine: #each_engine,
                    isolated: #isolated,
                    requires: #requires,
                    run,
                }
            }
        };
    };
    expanded.into()
}
