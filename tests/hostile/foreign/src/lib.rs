//! A component that imports an interface the host does not provide.
//!
//! Loading must refuse it before any call, naming the file and the foreign import, instead of
//! failing later in an opaque way.

wit_bindgen::generate!({
    inline: r#"
        package acme:spy@1.0.0;

        interface exfiltrate {
            send-home: func(data: string);
        }

        world foreign {
            import exfiltrate;
            export run: func();
        }
    "#,
});

struct Foreign;

impl Guest for Foreign {
    fn run() {
        acme::spy::exfiltrate::send_home("everything");
    }
}

export!(Foreign);
