//! A plugin built against an incompatible version of the contract (0.2.0).
//!
//! Loading must refuse it, naming the import whose version this host does not serve.

wit_bindgen::generate!({
    inline: r#"
        package eformidling:transport@0.2.0;

        interface log {
            log: func(message: string);
        }

        interface transport {
            describe: func() -> string;
        }

        world channel {
            import log;
            export transport;
        }
    "#,
});

struct Outdated;

impl exports::eformidling::transport::transport::Guest for Outdated {
    fn describe() -> String {
        eformidling::transport::log::log("describing");
        "outdated".to_owned()
    }
}

export!(Outdated);
